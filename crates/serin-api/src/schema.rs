//! Schema helpers for free-form fields, so the generated CRD stays structural.

use schemars::{Schema, SchemaGenerator, json_schema};

/// An object whose content the API server keeps as is.
pub fn any_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// A list of such objects.
pub fn any_object_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
    })
}
