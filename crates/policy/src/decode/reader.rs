//! Reading a JSON value (a parsed YAML document) while tracking the field path, so every error
//! names the field the way `kubectl` does: `spec.ingress[0].ports[1].endPort`.

use serde_json::{Map, Value};

use crate::selector::Labels;

/// A field the API server would reject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A mapping and where it is.
pub struct Object<'a> {
    path: String,
    map: &'a Map<String, Value>,
}

/// An owned path plus a borrowed value: what the accessors hand out.
pub struct At<'a> {
    pub path: String,
    pub value: &'a Value,
}

impl<'a> At<'a> {
    pub fn err(&self, message: impl Into<String>) -> FieldError {
        FieldError { field: self.path.clone(), message: message.into() }
    }

    pub fn object(&self) -> Result<Object<'a>, FieldError> {
        match self.value {
            Value::Object(map) => Ok(Object { path: self.path.clone(), map }),
            other => Err(self.err(format!("must be an object, not {}", kind(other)))),
        }
    }

    pub fn str(&self) -> Result<&'a str, FieldError> {
        self.value.as_str().ok_or_else(|| self.err(format!("must be a string, not {}", kind(self.value))))
    }

    /// The elements of a list, each with its `[i]` path.
    pub fn items(&self) -> Result<Vec<At<'a>>, FieldError> {
        let list = self
            .value
            .as_array()
            .ok_or_else(|| self.err(format!("must be a list, not {}", kind(self.value))))?;
        Ok(list
            .iter()
            .enumerate()
            .map(|(i, value)| At { path: format!("{}[{i}]", self.path), value })
            .collect())
    }

    /// A list of strings.
    pub fn strings(&self) -> Result<Vec<String>, FieldError> {
        self.items()?.iter().map(|item| item.str().map(str::to_string)).collect()
    }

    /// A mapping of string to string (labels).
    pub fn string_map(&self) -> Result<Labels, FieldError> {
        let obj = self.object()?;
        obj.map
            .iter()
            .map(|(k, v)| {
                let at = At { path: format!("{}.{k}", self.path), value: v };
                Ok((k.clone(), at.str()?.to_string()))
            })
            .collect()
    }

    /// An integer in `min..=max`.
    pub fn int_in(&self, min: i64, max: i64) -> Result<i64, FieldError> {
        match self.value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            Some(n) => Err(self.err(format!("{n} must be between {min} and {max}, inclusive"))),
            None => Err(self.err(format!("must be an integer, not {}", kind(self.value)))),
        }
    }
}

impl<'a> Object<'a> {
    /// The whole document.
    pub fn root(value: &'a Value) -> Result<Object<'a>, FieldError> {
        At { path: String::new(), value }.object().map_err(|e| FieldError { field: "(document)".into(), ..e })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn child(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    /// The field `key`; an explicit `null` counts as absent, as in Kubernetes.
    pub fn get(&self, key: &str) -> Option<At<'a>> {
        self.map.get(key).filter(|v| !v.is_null()).map(|value| At { path: self.child(key), value })
    }

    pub fn require(&self, key: &str) -> Result<At<'a>, FieldError> {
        self.get(key).ok_or_else(|| FieldError { field: self.child(key), message: "required value".into() })
    }

    /// Rejects fields outside `known`: a misspelt field must not silently widen a policy.
    pub fn allow_only(&self, known: &[&str]) -> Result<(), FieldError> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(FieldError {
                field: self.child(k),
                message: format!("unknown field (expected one of: {})", known.join(", ")),
            }),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_follow_the_document() {
        let v = json!({"spec": {"ingress": [{"ports": [{"port": "x", "endPort": 70000}]}]}});
        let root = Object::root(&v).unwrap();
        let spec = root.require("spec").unwrap().object().unwrap();
        let rules = spec.require("ingress").unwrap().items().unwrap();
        let ports = rules[0].object().unwrap().require("ports").unwrap().items().unwrap();
        let port = ports[0].object().unwrap();
        let e = port.require("endPort").unwrap().int_in(1, 65535).unwrap_err();
        assert_eq!(e.field, "spec.ingress[0].ports[0].endPort");
        assert!(e.message.contains("between 1 and 65535"), "{}", e.message);
        let e = port.require("port").unwrap().int_in(1, 65535).unwrap_err();
        assert_eq!(e.message, "must be an integer, not a string");
        let e = port.require("protocol").err().unwrap();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("spec.ingress[0].ports[0].protocol", "required value")
        );
        let e = port.allow_only(&["port"]).unwrap_err();
        assert_eq!(e.field, "spec.ingress[0].ports[0].endPort");
    }

    #[test]
    fn null_is_absent_and_types_are_named() {
        let v = json!({"a": null, "b": [1], "c": {"k": 1}});
        let root = Object::root(&v).unwrap();
        assert!(root.get("a").is_none());
        assert_eq!(root.require("b").unwrap().str().unwrap_err().message, "must be a string, not a list");
        let e = root.require("c").unwrap().string_map().unwrap_err();
        assert_eq!((e.field.as_str(), e.message.as_str()), ("c.k", "must be a string, not a number"));
        assert!(Object::root(&json!([1])).is_err());
    }
}
