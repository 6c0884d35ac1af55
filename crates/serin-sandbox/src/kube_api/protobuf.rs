//! Just enough of Kubernetes' protobuf encoding to accept `kubectl create namespace`, which
//! sends built-in objects as `application/vnd.kubernetes.protobuf`. Only the envelope
//! (`runtime.Unknown`) and `ObjectMeta`'s name, generateName, labels and annotations are read;
//! other kinds are refused with 415 so the caller knows to send JSON.

use serde_json::{Map, Value, json};

use super::error::ApiError;

/// The magic prefix of protobuf-encoded objects.
const MAGIC: &[u8] = b"k8s\x00";

/// One protobuf field: number and payload (varints are returned as their value).
enum Field<'a> {
    Bytes(u32, &'a [u8]),
    Varint,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn fields(buf: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let number = u32::try_from(key >> 3).ok()?;
        match key & 7 {
            0 => {
                varint(buf, &mut pos)?;
                out.push(Field::Varint);
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let bytes = buf.get(pos..pos.checked_add(len)?)?;
                pos += len;
                out.push(Field::Bytes(number, bytes));
            }
            1 => pos += 8,
            5 => pos += 4,
            _ => return None,
        }
    }
    Some(out)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn map_entry(bytes: &[u8]) -> Option<(String, String)> {
    let mut key = String::new();
    let mut value = String::new();
    for f in fields(bytes)? {
        match f {
            Field::Bytes(1, b) => key = text(b),
            Field::Bytes(2, b) => value = text(b),
            _ => {}
        }
    }
    Some((key, value))
}

fn object_meta(bytes: &[u8]) -> Option<Value> {
    let mut meta = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    for f in fields(bytes)? {
        match f {
            Field::Bytes(1, b) => {
                meta.insert("name".into(), json!(text(b)));
            }
            Field::Bytes(2, b) => {
                meta.insert("generateName".into(), json!(text(b)));
            }
            Field::Bytes(3, b) => {
                meta.insert("namespace".into(), json!(text(b)));
            }
            Field::Bytes(11, b) => {
                let (k, v) = map_entry(b)?;
                labels.insert(k, json!(v));
            }
            Field::Bytes(12, b) => {
                let (k, v) = map_entry(b)?;
                annotations.insert(k, json!(v));
            }
            _ => {}
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    Some(Value::Object(meta))
}

/// Decodes a protobuf-encoded Namespace into its JSON form.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let refuse = |why: &str| {
        ApiError::unsupported_media_type(format!(
            "protobuf bodies are only decoded for Namespace objects ({why}); send application/json"
        ))
    };
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| refuse("missing k8s magic"))?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for f in fields(envelope).ok_or_else(|| refuse("malformed envelope"))? {
        match f {
            Field::Bytes(1, type_meta) => {
                for t in fields(type_meta).ok_or_else(|| refuse("malformed type meta"))? {
                    match t {
                        Field::Bytes(1, b) => api_version = text(b),
                        Field::Bytes(2, b) => kind = text(b),
                        _ => {}
                    }
                }
            }
            Field::Bytes(2, b) => raw = b,
            Field::Bytes(..) | Field::Varint => {}
        }
    }
    if kind != "Namespace" {
        return Err(refuse(&format!("got {kind}")));
    }
    let mut metadata = json!({});
    for f in fields(raw).ok_or_else(|| refuse("malformed object"))? {
        if let Field::Bytes(1, b) = f {
            metadata = object_meta(b).ok_or_else(|| refuse("malformed metadata"))?;
        }
    }
    Ok(json!({"apiVersion": api_version, "kind": kind, "metadata": metadata}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(number: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![
            u8::try_from(number << 3 | 2).expect("small field"),
            u8::try_from(payload.len()).expect("short"),
        ];
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn decodes_a_namespace_envelope() {
        let type_meta = [bytes(1, b"v1"), bytes(2, b"Namespace")].concat();
        let label = [bytes(1, b"team"), bytes(2, b"a")].concat();
        let meta = [bytes(1, b"test"), bytes(11, &label)].concat();
        let object = bytes(1, &meta);
        let envelope = [MAGIC.to_vec(), bytes(1, &type_meta), bytes(2, &object)].concat();
        let v = decode(&envelope).expect("decodes");
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test", "labels": {"team": "a"}}})
        );
        assert_eq!(decode(b"{}").expect_err("json is not protobuf").code, 415);
    }
}
