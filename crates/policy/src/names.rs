//! The syntax Kubernetes enforces on names, label keys and values, and port names
//! (k8s.io/apimachinery validation: DNS-1123 labels and subdomains, qualified names,
//! IANA_SVC_NAME). Each check returns the reason in the API server's words, without the field.

/// A DNS-1123 label: namespace names. At most 63 characters, lower-case alphanumerics and '-',
/// starting and ending with an alphanumeric.
pub fn dns_label(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err(format!("{s:?} must be 1 to 63 characters"));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !s.chars().all(ok_char) || s.starts_with('-') || s.ends_with('-') {
        return Err(format!(
            "{s:?} must consist of lower case alphanumeric characters or '-', and must start and end \
             with an alphanumeric character"
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: policy and pod names. At most 253 characters, dot-separated labels.
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 253 {
        return Err(format!("{s:?} must be 1 to 253 characters"));
    }
    if s.split('.').all(|part| dns_label(part).is_ok()) {
        return Ok(());
    }
    Err(format!(
        "{s:?} must consist of lower case alphanumeric characters, '-' or '.', and must start and end \
         with an alphanumeric character"
    ))
}

/// A label key: an optional DNS subdomain prefix and '/', then a name of at most 63 characters
/// of alphanumerics, '-', '_' and '.', starting and ending with an alphanumeric.
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        dns_subdomain(p).map_err(|e| format!("prefix of label key {key:?}: {e}"))?;
    }
    if name.is_empty() {
        return Err(format!("label key {key:?} has an empty name part"));
    }
    label_value(name).map_err(|_| {
        format!(
            "name part of label key {key:?} must be at most 63 characters of alphanumerics, '-', '_' \
             or '.', starting and ending with an alphanumeric"
        )
    })
}

/// A label value: empty, or at most 63 characters of alphanumerics, '-', '_' and '.', starting
/// and ending with an alphanumeric.
pub fn label_value(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Ok(());
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if v.len() > 63 || !v.chars().all(ok_char) || !edge(v.chars().next()) || !edge(v.chars().last()) {
        return Err(format!(
            "label value {v:?} must be at most 63 characters of alphanumerics, '-', '_' or '.', \
             starting and ending with an alphanumeric"
        ));
    }
    Ok(())
}

/// An IANA service name (a container port's name): 1 to 15 lower-case alphanumerics and '-',
/// with at least one letter, no leading, trailing or doubled '-'.
pub fn port_name(s: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let valid = !s.is_empty()
        && s.len() <= 15
        && s.chars().all(ok_char)
        && s.chars().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid port name: 1 to 15 lower-case alphanumerics or '-', at least one \
             letter, no leading, trailing or doubled '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_and_subdomains() {
        assert!(dns_label("x").is_ok());
        assert!(dns_label("kube-system").is_ok());
        assert!(dns_label("1abc").is_ok());
        assert!(dns_label("").is_err());
        assert!(dns_label("-a").is_err());
        assert!(dns_label("a_b").is_err());
        assert!(dns_label("Upper").is_err());
        assert!(dns_label(&"a".repeat(64)).is_err());
        assert!(dns_subdomain("allow.web-80").is_ok());
        assert!(dns_subdomain("a..b").is_err());
        assert!(dns_subdomain(".a").is_err());
    }

    #[test]
    fn label_keys_and_values() {
        assert!(label_key("app").is_ok());
        assert!(label_key("kubernetes.io/metadata.name").is_ok());
        assert!(label_key("App_Name.v1").is_ok());
        assert!(label_key("bad/prefix/twice").is_err());
        assert!(label_key("Bad_Prefix/x").is_err());
        assert!(label_key("example.com/").is_err());
        assert!(label_key("-x").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3-A").is_ok());
        assert!(label_value("a b").is_err());
        assert!(label_value("_x").is_err());
        assert!(label_value(&"v".repeat(64)).is_err());
    }

    #[test]
    fn port_names_follow_iana() {
        assert!(port_name("http").is_ok());
        assert!(port_name("serve-80-tcp").is_ok());
        assert!(port_name("80").is_err(), "needs a letter");
        assert!(port_name("a--b").is_err());
        assert!(port_name("-a").is_err());
        assert!(port_name("HTTP").is_err());
        assert!(port_name("a-very-long-port-name").is_err());
    }
}
