//! The error model and its wire form.

use cni_spec::{Error, ErrorCode};
use serde_json::json;

#[test]
fn codes_match_the_spec_table() {
    let table = [
        (ErrorCode::IncompatibleVersion, 1),
        (ErrorCode::UnsupportedField, 2),
        (ErrorCode::UnknownContainer, 3),
        (ErrorCode::InvalidEnvironment, 4),
        (ErrorCode::Io, 5),
        (ErrorCode::Decode, 6),
        (ErrorCode::InvalidConfig, 7),
        (ErrorCode::TryAgainLater, 11),
        (ErrorCode::NotAvailable, 50),
        (ErrorCode::LimitedConnectivity, 51),
        (ErrorCode::Internal, 999),
        (ErrorCode::Plugin(100), 100),
        (ErrorCode::Plugin(4242), 4242),
    ];
    for (code, n) in table {
        assert_eq!(code.code(), n);
        assert_eq!(ErrorCode::from_code(n), code);
    }
}

#[test]
fn from_code_round_trips_every_number() {
    for n in (0..1200).chain([u32::MAX]) {
        assert_eq!(ErrorCode::from_code(n).code(), n);
    }
}

#[test]
fn display_joins_details() {
    let e = Error::invalid_config("bad subnet");
    assert_eq!(e.to_string(), "bad subnet");
    assert_eq!(e.with_details("10.0.0.0/31 too small").to_string(), "bad subnet: 10.0.0.0/31 too small");
}

#[test]
fn convenience_constructors_set_codes() {
    assert_eq!(Error::invalid_config("x").code.code(), 7);
    assert_eq!(Error::decode("x").code.code(), 6);
    assert_eq!(Error::invalid_env("x").code.code(), 4);
    assert_eq!(Error::io("x").code.code(), 5);
    assert_eq!(Error::internal("x").code.code(), 999);
    assert_eq!(Error::try_again("x").code.code(), 11);
    assert_eq!(Error::incompatible("x").code.code(), 1);
    let e = Error::new(ErrorCode::Plugin(123), "m");
    assert_eq!((e.msg.as_str(), e.details.as_str()), ("m", ""));
}

#[test]
fn to_json_omits_empty_details() {
    let e = Error::try_again("busy");
    assert_eq!(e.to_json("1.1.0"), json!({"cniVersion": "1.1.0", "code": 11, "msg": "busy"}));
    let e = e.with_details("lock held");
    let v = e.to_json("0.4.0");
    assert_eq!(v, json!({"cniVersion": "0.4.0", "code": 11, "msg": "busy", "details": "lock held"}));
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["cniVersion", "code", "msg", "details"]);
}

#[test]
fn from_json_reads_plugin_errors() {
    let e = Error::new(ErrorCode::Plugin(107), "no space").with_details("range full");
    assert_eq!(Error::from_json(&e.to_json("1.0.0")), Some(e));
    let bare = Error::from_json(&json!({"code": 7})).unwrap();
    assert_eq!(bare, Error::invalid_config(""));
}

#[test]
fn from_json_rejects_non_errors() {
    for v in [
        json!({"msg": "x"}),
        json!({"code": "7", "msg": "x"}),
        json!({"code": -1}),
        json!({"code": 1.5}),
        json!({"code": 5_000_000_000u64}),
        json!([1]),
        json!(null),
    ] {
        assert_eq!(Error::from_json(&v), None, "{v}");
    }
}
