//! Label selectors (`matchLabels` AND `matchExpressions`), validated like the API server does.

use std::collections::BTreeMap;
use std::fmt;

use crate::names;

/// Labels of a pod or namespace.
pub type Labels = BTreeMap<String, String>;

/// A label selector. The empty selector selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub match_labels: Labels,
    pub match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// A `matchExpressions` operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// A selector field that the API server would reject: `field` is relative to the selector
/// (`matchExpressions[0].values`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SelectorError {
    pub field: String,
    pub message: String,
}

impl Operator {
    pub fn parse(s: &str) -> Option<Operator> {
        match s {
            "In" => Some(Operator::In),
            "NotIn" => Some(Operator::NotIn),
            "Exists" => Some(Operator::Exists),
            "DoesNotExist" => Some(Operator::DoesNotExist),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        }
    }
}

impl LabelSelector {
    /// The selector that selects everything (`{}`).
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// A selector of `matchLabels` only; panics never, validates nothing (for tests and
    /// builders; parsed selectors go through [`LabelSelector::validate`]).
    pub fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> LabelSelector {
        let match_labels = pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        LabelSelector { match_labels, match_expressions: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// True when every `matchLabels` pair and every expression holds for `labels`.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Checks keys, values and operator/values combinations.
    pub fn validate(&self) -> Result<(), SelectorError> {
        for (k, v) in &self.match_labels {
            let err = |message| SelectorError { field: format!("matchLabels.{k}"), message };
            names::label_key(k).map_err(err)?;
            names::label_value(v).map_err(err)?;
        }
        for (i, r) in self.match_expressions.iter().enumerate() {
            r.validate()
                .map_err(|e| SelectorError { field: format!("matchExpressions[{i}].{}", e.field), ..e })?;
        }
        Ok(())
    }
}

impl Requirement {
    pub fn new(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement { key: key.into(), operator, values: values.iter().map(|v| v.to_string()).collect() }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }

    fn validate(&self) -> Result<(), SelectorError> {
        let err = |field: &str, message: String| SelectorError { field: field.into(), message };
        names::label_key(&self.key).map_err(|m| err("key", m))?;
        match self.operator {
            Operator::In | Operator::NotIn if self.values.is_empty() => {
                Err(err("values", format!("must be specified when `operator` is {}", self.operator.as_str())))
            }
            Operator::Exists | Operator::DoesNotExist if !self.values.is_empty() => Err(err(
                "values",
                format!("may not be specified when `operator` is {}", self.operator.as_str()),
            )),
            _ => {
                for (i, v) in self.values.iter().enumerate() {
                    names::label_value(v).map_err(|m| err(&format!("values[{i}]"), m))?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for LabelSelector {
    /// The `kubectl get -l` form: `app=web,tier in (a,b),!legacy`; `{}` for everything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("{}");
        }
        let mut parts: Vec<String> = self.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.extend(self.match_expressions.iter().map(|r| match r.operator {
            Operator::In => format!("{} in ({})", r.key, r.values.join(",")),
            Operator::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
            Operator::Exists => r.key.clone(),
            Operator::DoesNotExist => format!("!{}", r.key),
        }));
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn expr(key: &str, op: Operator, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: Labels::new(),
            match_expressions: vec![Requirement::new(key, op, values)],
        }
    }

    #[test]
    fn empty_selector_selects_everything() {
        assert!(LabelSelector::everything().matches(&Labels::new()));
        assert!(LabelSelector::everything().matches(&labels(&[("pod", "a")])));
    }

    #[test]
    fn match_labels_need_every_pair() {
        let s = LabelSelector::labels([("pod", "a"), ("tier", "web")]);
        assert!(s.matches(&labels(&[("pod", "a"), ("tier", "web"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("pod", "a")])));
        assert!(!s.matches(&labels(&[("pod", "b"), ("tier", "web")])));
    }

    #[test]
    fn operators() {
        let l = labels(&[("pod", "a")]);
        let none = Labels::new();
        assert!(expr("pod", Operator::In, &["a", "b"]).matches(&l));
        assert!(!expr("pod", Operator::In, &["b"]).matches(&l));
        assert!(!expr("pod", Operator::In, &["a"]).matches(&none));
        assert!(expr("pod", Operator::NotIn, &["b"]).matches(&l));
        assert!(!expr("pod", Operator::NotIn, &["a"]).matches(&l));
        assert!(expr("pod", Operator::NotIn, &["a"]).matches(&none), "NotIn holds when the key is absent");
        assert!(expr("pod", Operator::Exists, &[]).matches(&l));
        assert!(!expr("pod", Operator::Exists, &[]).matches(&none));
        assert!(expr("pod", Operator::DoesNotExist, &[]).matches(&none));
        assert!(!expr("pod", Operator::DoesNotExist, &[]).matches(&l));
    }

    #[test]
    fn labels_and_expressions_are_anded() {
        let mut s = LabelSelector::labels([("pod", "a")]);
        s.match_expressions.push(Requirement::new("tier", Operator::Exists, &[]));
        assert!(!s.matches(&labels(&[("pod", "a")])));
        assert!(s.matches(&labels(&[("pod", "a"), ("tier", "x")])));
    }

    #[test]
    fn validation_names_the_field() {
        let e = expr("pod", Operator::In, &[]).validate().unwrap_err();
        assert_eq!(e.field, "matchExpressions[0].values");
        assert!(e.message.contains("must be specified"), "{e}");
        let e = expr("pod", Operator::Exists, &["a"]).validate().unwrap_err();
        assert!(e.message.contains("may not be specified"), "{e}");
        let e = expr("bad key", Operator::Exists, &[]).validate().unwrap_err();
        assert_eq!(e.field, "matchExpressions[0].key");
        let e = expr("pod", Operator::In, &["bad value"]).validate().unwrap_err();
        assert_eq!(e.field, "matchExpressions[0].values[0]");
        let e = LabelSelector::labels([("pod", "no spaces")]).validate().unwrap_err();
        assert_eq!(e.field, "matchLabels.pod");
        assert!(expr("pod", Operator::NotIn, &["a"]).validate().is_ok());
    }

    #[test]
    fn displays_like_kubectl() {
        let mut s = LabelSelector::labels([("app", "web")]);
        s.match_expressions.push(Requirement::new("tier", Operator::In, &["a", "b"]));
        s.match_expressions.push(Requirement::new("legacy", Operator::DoesNotExist, &[]));
        assert_eq!(s.to_string(), "app=web,tier in (a,b),!legacy");
        assert_eq!(LabelSelector::everything().to_string(), "{}");
    }
}
