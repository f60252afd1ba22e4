//! Golden files for results in every version and every conversion pair.
//!
//! `tests/golden/input-<v>.json` and `multi-<v>.json` are hand-written
//! inputs in the exact shape real plugins print (they are never rewritten).
//! `convert-<from>-to-<to>.json` are the expected outputs of converting an
//! input to another version; a conversion that must fail has an
//! `.error.json` file holding the error as `Error::to_json` writes it.
//!
//! Every successful conversion must also read back in its target version
//! and be written out unchanged.
//!
//! To regenerate the expected outputs after an intended change, run
//! `TWILL_BLESS=1 cargo test -p cni-spec --test golden` and review the diff.

use std::path::PathBuf;

use cni_spec::{CniResult, Error, Version};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read(name: &str) -> Value {
    let path = dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with TWILL_BLESS=1 to create it)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("serialize") + "\n"
}

/// Compares `actual` with golden file `name` (key order included), or
/// rewrites it under TWILL_BLESS=1.
fn check_golden(name: &str, actual: &Value) {
    let path = dir().join(name);
    if std::env::var_os("TWILL_BLESS").is_some() {
        std::fs::write(&path, pretty(actual)).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with TWILL_BLESS=1 to create it)", path.display()));
    assert_eq!(pretty(actual), expected, "golden file {name} differs");
}

/// A golden file that must not exist any more under the other outcome.
fn remove_stale(name: &str) {
    let path = dir().join(name);
    if std::env::var_os("TWILL_BLESS").is_some() {
        let _ = std::fs::remove_file(path);
    } else {
        assert!(!path.exists(), "stale golden file {name}");
    }
}

fn check_conversion(prefix: &str, from: Version, to: Version) -> Result<Value, Error> {
    let input = read(&format!("{prefix}-{from}.json"));
    let result = CniResult::from_json(&input).expect("input parses");
    let stem = format!("convert-{prefix}-{from}-to-{to}");
    let outcome = result.to_json(to);
    match &outcome {
        Ok(v) => {
            check_golden(&format!("{stem}.json"), v);
            let back = CniResult::from_json(v).expect("converted output parses");
            assert_eq!(back.cni_version, to);
            assert_eq!(pretty(&back.to_json(to).expect("emit")), pretty(v), "{stem}");
            remove_stale(&format!("{stem}.error.json"));
        }
        Err(e) => {
            check_golden(&format!("{stem}.error.json"), &e.to_json(to.as_str()));
            remove_stale(&format!("{stem}.json"));
        }
    }
    outcome
}

#[test]
fn every_input_round_trips_in_its_own_version() {
    for v in Version::ALL {
        let input = read(&format!("input-{v}.json"));
        let result = CniResult::from_json(&input).expect("input parses");
        assert_eq!(result.cni_version, v);
        assert_eq!(pretty(&result.to_json(v).expect("emit")), pretty(&input), "{v}");
    }
    for v in [Version::V0_4_0, Version::V1_1_0] {
        let input = read(&format!("multi-{v}.json"));
        let result = CniResult::from_json(&input).expect("multi parses");
        assert_eq!(pretty(&result.to_json(v).expect("emit")), pretty(&input), "multi {v}");
    }
}

#[test]
fn every_conversion_pair_matches_its_golden_file() {
    for from in Version::ALL {
        for to in Version::ALL {
            let out = check_conversion("input", from, to);
            assert!(out.is_ok(), "input {from} -> {to}: {out:?}");
        }
    }
}

#[test]
fn multi_address_results_do_not_fit_legacy_versions() {
    for from in [Version::V0_4_0, Version::V1_1_0] {
        for to in Version::ALL {
            let out = check_conversion("multi", from, to);
            if to.is_legacy_result() {
                let err = out.expect_err("two IPv4 addresses cannot be written as ip4");
                assert_eq!(err.code.code(), 1);
                assert!(err.msg.contains("2 IPv4 addresses"), "{err}");
                assert!(err.msg.contains("10.1.2.3/24, 10.1.2.1/24"), "{err}");
            } else {
                assert!(out.is_ok(), "multi {from} -> {to}: {out:?}");
            }
        }
    }
}
