//! The CNI error model: `{cniVersion, code, msg, details}` on the wire.

use serde_json::{Map, Value};

/// A CNI error code (SPEC.md "Error"); codes 0–99 are reserved by the spec,
/// 100 and above are plugin-specific.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 1: incompatible CNI version.
    IncompatibleVersion,
    /// 2: unsupported field in the network configuration.
    UnsupportedField,
    /// 3: container unknown or does not exist.
    UnknownContainer,
    /// 4: invalid or missing `CNI_*` environment variables.
    InvalidEnvironment,
    /// 5: I/O failure.
    Io,
    /// 6: failed to decode content.
    Decode,
    /// 7: invalid network configuration.
    InvalidConfig,
    /// 11: try again later.
    TryAgainLater,
    /// 50: the plugin cannot service ADD requests (STATUS).
    NotAvailable,
    /// 51: not available, and existing containers may have limited connectivity.
    LimitedConnectivity,
    /// 999: internal error (the reference's catch-all for untyped errors).
    Internal,
    /// Any other code: plugin-specific codes (100 and above) and reserved
    /// codes this enum has no name for, kept as received.
    Plugin(u32),
}

impl ErrorCode {
    /// The numeric code written on the wire.
    pub fn code(self) -> u32 {
        match self {
            ErrorCode::IncompatibleVersion => 1,
            ErrorCode::UnsupportedField => 2,
            ErrorCode::UnknownContainer => 3,
            ErrorCode::InvalidEnvironment => 4,
            ErrorCode::Io => 5,
            ErrorCode::Decode => 6,
            ErrorCode::InvalidConfig => 7,
            ErrorCode::TryAgainLater => 11,
            ErrorCode::NotAvailable => 50,
            ErrorCode::LimitedConnectivity => 51,
            ErrorCode::Internal => 999,
            ErrorCode::Plugin(c) => c,
        }
    }

    /// The code for a number; `from_code(c).code() == c` for every `c`.
    pub fn from_code(code: u32) -> ErrorCode {
        match code {
            1 => ErrorCode::IncompatibleVersion,
            2 => ErrorCode::UnsupportedField,
            3 => ErrorCode::UnknownContainer,
            4 => ErrorCode::InvalidEnvironment,
            5 => ErrorCode::Io,
            6 => ErrorCode::Decode,
            7 => ErrorCode::InvalidConfig,
            11 => ErrorCode::TryAgainLater,
            50 => ErrorCode::NotAvailable,
            51 => ErrorCode::LimitedConnectivity,
            999 => ErrorCode::Internal,
            other => ErrorCode::Plugin(other),
        }
    }
}

/// A CNI error as a plugin reports it. Displays as `msg` or `msg: details`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{msg}{}", details_suffix(details))]
pub struct Error {
    /// The error code.
    pub code: ErrorCode,
    /// A short message characterising the error.
    pub msg: String,
    /// A longer description; empty when there is none.
    pub details: String,
}

fn details_suffix(details: &str) -> String {
    if details.is_empty() { String::new() } else { format!(": {details}") }
}

impl Error {
    /// An error without details.
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Error {
        Error { code, msg: msg.into(), details: String::new() }
    }

    /// The same error with `details` set.
    pub fn with_details(mut self, details: impl Into<String>) -> Error {
        self.details = details.into();
        self
    }

    /// Code 7: invalid network configuration.
    pub fn invalid_config(msg: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidConfig, msg)
    }

    /// Code 6: failed to decode content.
    pub fn decode(msg: impl Into<String>) -> Error {
        Error::new(ErrorCode::Decode, msg)
    }

    /// Code 4: invalid environment variables.
    pub fn invalid_env(msg: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidEnvironment, msg)
    }

    /// Code 5: I/O failure.
    pub fn io(msg: impl Into<String>) -> Error {
        Error::new(ErrorCode::Io, msg)
    }

    /// Code 999: internal error.
    pub fn internal(msg: impl Into<String>) -> Error {
        Error::new(ErrorCode::Internal, msg)
    }

    /// Code 11: try again later.
    pub fn try_again(msg: impl Into<String>) -> Error {
        Error::new(ErrorCode::TryAgainLater, msg)
    }

    /// Code 1: incompatible CNI version.
    pub fn incompatible(msg: impl Into<String>) -> Error {
        Error::new(ErrorCode::IncompatibleVersion, msg)
    }

    /// The wire form `{"cniVersion", "code", "msg", "details"}`; `details`
    /// is omitted when empty, as the reference does.
    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut m = Map::new();
        m.insert("cniVersion".into(), Value::from(cni_version));
        m.insert("code".into(), Value::from(self.code.code()));
        m.insert("msg".into(), Value::from(self.msg.as_str()));
        if !self.details.is_empty() {
            m.insert("details".into(), Value::from(self.details.as_str()));
        }
        Value::Object(m)
    }

    /// Reads a plugin's error output: an object with a numeric `code`;
    /// `msg` and `details` default to empty. `None` when it is not one.
    pub fn from_json(v: &Value) -> Option<Error> {
        let obj = v.as_object()?;
        let code = u32::try_from(obj.get("code")?.as_u64()?).ok()?;
        let text = |key: &str| obj.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        Some(Error { code: ErrorCode::from_code(code), msg: text("msg"), details: text("details") })
    }
}
