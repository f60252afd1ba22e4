//! Reading set elements back from nft's JSON and turning them into the text form used to
//! delete them.

use serde_json::Value;

use crate::{Error, list_json};

/// One set (or map) element: the set it is in, its nft text form (the key, for a map), its
/// comment, and for a map element the value it maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub set: String,
    pub text: String,
    pub comment: Option<String>,
    pub data: Option<String>,
}

/// Every element of every set of `family table` (one nft run); a missing table has none.
pub fn set_elements(family: &str, table: &str) -> Result<Vec<Element>, Error> {
    let json = match list_json(&["table", family, table]) {
        Ok(json) => json,
        Err(e) if e.is_missing() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(parse_set_elements(&json))
}

/// The elements of the table's sets whose comment is `owner`.
pub fn owned_elements(family: &str, table: &str, owner: &str) -> Result<Vec<Element>, Error> {
    Ok(set_elements(family, table)?.into_iter().filter(|e| e.comment.as_deref() == Some(owner)).collect())
}

/// Elements of every set and map in an `nft -j list table|set|map` answer.
pub fn parse_set_elements(json: &Value) -> Vec<Element> {
    let objects = json.get("nftables").and_then(Value::as_array).into_iter().flatten();
    let sets = objects.filter_map(|o| o.get("set").or_else(|| o.get("map")));
    sets.flat_map(|s| {
        let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
        let elems = s.get("elem").and_then(Value::as_array).into_iter().flatten();
        elems.filter_map(move |e| parse_element(name, e))
    })
    .collect()
}

fn parse_element(set: &str, v: &Value) -> Option<Element> {
    // A map element is `[key, data]`; the key carries the comment.
    let (key, data) = match v {
        Value::Array(pair) if pair.len() == 2 => (&pair[0], Some(value_text(&pair[1])?)),
        _ => (v, None),
    };
    let (val, comment) = match key.get("elem") {
        Some(inner) => (inner.get("val")?, inner.get("comment").and_then(Value::as_str).map(str::to_string)),
        None => (key, None),
    };
    Some(Element { set: set.to_string(), text: value_text(val)?, comment, data })
}

/// A value in nft text: addresses, numbers, prefixes, ranges and concatenations.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => {
            if let Some(p) = o.get("prefix") {
                return Some(format!("{}/{}", value_text(p.get("addr")?)?, p.get("len")?.as_u64()?));
            }
            if let Some(Value::Array(r)) = o.get("range") {
                return Some(format!("{}-{}", value_text(r.first()?)?, value_text(r.get(1)?)?));
            }
            if let Some(Value::Array(parts)) = o.get("concat") {
                let parts: Option<Vec<String>> = parts.iter().map(value_text).collect();
                return Some(parts?.join(" . "));
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_plain_concat_and_prefix_elements_with_comments() {
        let j = json!({"nftables": [{"metainfo": {}}, {"set": {"name": "local4", "elem": [
            {"elem": {"val": {"concat": ["10.1.0.5", {"prefix": {"addr": "10.1.0.0", "len": 24}}]}, "comment": "c1/eth0"}},
            {"elem": {"val": "10.1.0.6", "comment": "c2/eth0"}},
            "10.1.0.7",
            {"range": ["10.2.0.1", "10.2.0.9"]}
        ]}}]});
        let got = parse_set_elements(&j);
        let el = |text: &str, comment: Option<&str>| Element {
            set: "local4".into(),
            text: text.into(),
            comment: comment.map(str::to_string),
            data: None,
        };
        assert_eq!(got[0], el("10.1.0.5 . 10.1.0.0/24", Some("c1/eth0")));
        assert_eq!(got[1], el("10.1.0.6", Some("c2/eth0")));
        assert_eq!(got[2], el("10.1.0.7", None));
        assert_eq!(got[3].text, "10.2.0.1-10.2.0.9");
    }

    #[test]
    fn map_elements_carry_key_comment_and_data() {
        let j = json!({"nftables": [{"map": {"name": "port4", "elem": [
            [{"elem": {"val": {"concat": ["tcp", 8080]}, "comment": "n/c/eth0"}}, {"concat": ["10.88.0.2", 80]}],
            [{"concat": ["udp", 53]}, {"concat": ["10.88.0.3", 53]}]
        ]}}]});
        let got = parse_set_elements(&j);
        assert_eq!(
            got[0],
            Element {
                set: "port4".into(),
                text: "tcp . 8080".into(),
                comment: Some("n/c/eth0".into()),
                data: Some("10.88.0.2 . 80".into()),
            }
        );
        assert_eq!((got[1].text.as_str(), got[1].comment.as_deref()), ("udp . 53", None));
    }

    #[test]
    fn empty_set_has_no_elements() {
        assert!(parse_set_elements(&json!({"nftables": [{"set": {"name": "s"}}]})).is_empty());
    }
}
