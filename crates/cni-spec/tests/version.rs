//! Versions, negotiation and VERSION answers.

use cni_spec::{ErrorCode, Version, VersionInfo, negotiate, version_info};
use serde_json::json;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_version_round_trips_through_its_string() {
    for v in Version::ALL {
        assert_eq!(Version::parse(v.as_str()).unwrap(), v);
        assert_eq!(v.to_string(), v.as_str());
        assert_eq!(v.as_str().parse::<Version>().unwrap(), v);
        let ser = serde_json::to_value(v).unwrap();
        assert_eq!(ser, json!(v.as_str()));
        assert_eq!(serde_json::from_value::<Version>(ser).unwrap(), v);
    }
    assert_eq!(Version::ALL.iter().max(), Some(&Version::LATEST));
}

#[test]
fn versions_are_ordered_like_the_spec() {
    let mut sorted = Version::ALL;
    sorted.sort();
    assert_eq!(sorted, Version::ALL);
    assert!(Version::V0_3_1 > Version::V0_3_0);
    assert!(Version::V1_0_0 > Version::V0_4_0);
}

#[test]
fn unknown_version_is_code_1_naming_it() {
    for bad in ["", "0.5.0", "1.0", "v1.0.0", "2.0.0", "1.1.0 "] {
        let err = Version::parse(bad).unwrap_err();
        assert_eq!(err.code, ErrorCode::IncompatibleVersion, "{bad:?}");
        assert!(err.msg.contains(&format!("{bad:?}")), "{err}");
    }
    assert!(serde_json::from_value::<Version>(json!("9.9.9")).is_err());
    assert!(serde_json::from_value::<Version>(json!(1)).is_err());
}

#[test]
fn verb_support_by_version() {
    let check: Vec<_> = Version::ALL.into_iter().filter(|v| v.supports_check()).collect();
    assert_eq!(check, [Version::V0_4_0, Version::V1_0_0, Version::V1_1_0]);
    let gc: Vec<_> = Version::ALL.into_iter().filter(|v| v.supports_gc()).collect();
    assert_eq!(gc, [Version::V1_1_0]);
}

#[test]
fn negotiate_picks_the_highest_common_version() {
    let wanted = strings(&["0.3.1", "1.0.0", "0.4.0"]);
    assert_eq!(negotiate(&wanted, &Version::ALL).unwrap(), Version::V1_0_0);
    let old = [Version::V0_3_1, Version::V0_4_0];
    assert_eq!(negotiate(&wanted, &old).unwrap(), Version::V0_4_0);
}

#[test]
fn negotiate_skips_unknown_wanted_versions() {
    let wanted = strings(&["2.5.0", "garbage", "0.3.1"]);
    assert_eq!(negotiate(&wanted, &Version::ALL).unwrap(), Version::V0_3_1);
}

#[test]
fn negotiate_without_overlap_is_code_1_listing_both() {
    let err = negotiate(&strings(&["1.1.0", "9.0.0"]), &[Version::V0_3_1]).unwrap_err();
    assert_eq!(err.code.code(), 1);
    assert!(err.details.contains("1.1.0, 9.0.0"), "{err}");
    assert!(err.details.contains("0.3.1"), "{err}");
    assert!(negotiate(&[], &Version::ALL).is_err());
}

#[test]
fn version_info_answer_shape() {
    let v = version_info("0.4.0", &[Version::V0_3_1, Version::V0_4_0]);
    assert_eq!(v, json!({"cniVersion": "0.4.0", "supportedVersions": ["0.3.1", "0.4.0"]}));
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["cniVersion", "supportedVersions"]);
}

#[test]
fn version_info_parses_answers() {
    let info = VersionInfo::from_json(&version_info("1.1.0", &Version::ALL)).unwrap();
    assert_eq!(info.cni_version, "1.1.0");
    assert_eq!(info.versions(), Version::ALL);
    let with_unknown =
        VersionInfo::from_json(&json!({"cniVersion": "1.0.0", "supportedVersions": ["1.0.0", "7.0.0"]}))
            .unwrap();
    assert_eq!(with_unknown.versions(), [Version::V1_0_0]);
    assert_eq!(with_unknown.supported_versions.len(), 2);
}

#[test]
fn version_info_legacy_0_2_0_answer_means_0_1_and_0_2() {
    let info = VersionInfo::from_json(&json!({"cniVersion": "0.2.0"})).unwrap();
    assert_eq!(info.versions(), [Version::V0_1_0, Version::V0_2_0]);
}

#[test]
fn version_info_bad_answers_are_code_6() {
    for bad in [
        json!({"cniVersion": "1.0.0"}),
        json!({"supportedVersions": ["1.0.0"]}),
        json!({"cniVersion": 1}),
        json!("1.0.0"),
    ] {
        let err = VersionInfo::from_json(&bad).unwrap_err();
        assert_eq!(err.code, ErrorCode::Decode, "{bad}");
    }
}
