//! Flagger's record of the revisions it handled, as it stores them in a Knative Canary's status
//! (`lastAppliedSpec`, `lastPromotedSpec`), so that Serin can take over a Canary Flagger left in
//! any phase without analysing again a revision Flagger already rolled back, and so that the
//! status Serin writes still reads correctly to Flagger.

use serde::{Deserialize, Serialize};

/// Flagger's hash of a Knative revision name, exactly as Flagger 1.44 computes it
/// (`ComputeHash(service.Status.LatestCreatedRevisionName)`): FNV-1a 32 of the spew rendering
/// `(string)NAME`, printed in decimal, each digit then mapped through apimachinery's
/// `SafeEncodeString` alphabet.
pub fn revision_hash(revision: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u32 = 0x811c_9dc5;
    for byte in b"(string)".iter().chain(revision.as_bytes()) {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|digit| char::from(ALPHANUMS[usize::from(digit) % ALPHANUMS.len()]))
        .collect()
}

/// The two hashes of a status Flagger wrote; empty in a status Serin wrote (Serin stores the
/// revision names themselves).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlaggerRecord {
    /// `lastAppliedSpec`: the last revision Flagger started (or finished) handling.
    pub last_applied: Option<String>,
    /// `lastPromotedSpec`: the last revision Flagger promoted.
    pub last_promoted: Option<String>,
}

impl FlaggerRecord {
    /// Whether the record holds anything.
    pub fn is_empty(&self) -> bool {
        self.last_applied.is_none() && self.last_promoted.is_none()
    }

    /// Whether Flagger already handled `revision` (analysed it, rolled it back or promoted it),
    /// by Flagger's own rule (`hasSpecChanged`).
    pub fn handled(&self, revision: &str) -> bool {
        let hash = revision_hash(revision);
        self.last_applied.as_deref() == Some(hash.as_str()) || self.last_promoted.as_deref() == Some(hash.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Produced by Flagger's algorithm in Go (`testdata/flagger/hash/main.go`).
    const FIXTURES: &str = include_str!("../../../testdata/flagger/revision-hashes.tsv");

    #[test]
    fn hashes_equal_the_ones_flaggers_go_code_computes() {
        let mut checked = 0;
        for line in FIXTURES.lines() {
            let (name, expected) = line.split_once('\t').expect("name TAB hash");
            assert_eq!(revision_hash(name), expected, "hash of {name:?}");
            checked += 1;
        }
        assert!(checked >= 5, "fixture file has {checked} lines");
    }

    #[test]
    fn a_record_recognises_both_applied_and_promoted_revisions() {
        let record = FlaggerRecord {
            last_applied: Some(revision_hash("podinfo-00002")),
            last_promoted: Some(revision_hash("podinfo-00001")),
        };
        assert!(record.handled("podinfo-00002"));
        assert!(record.handled("podinfo-00001"));
        assert!(!record.handled("podinfo-00003"));
        assert!(!FlaggerRecord::default().handled("podinfo-00001"));
    }
}
