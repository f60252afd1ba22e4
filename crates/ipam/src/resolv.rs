//! The `resolvConf` option: DNS settings for the result, read from a resolv.conf-style file.

use std::fs;
use std::path::Path;

use crate::error::Error;

/// DNS settings in the shape of a CNI result's `dns` object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub domain: Option<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// Parse resolv.conf text exactly as the reference host-local does: lines starting with `#`
/// or `;` and lines of fewer than two words are skipped; `nameserver` takes its first
/// argument, `domain` the first argument of the last such line, and `search` and `options`
/// accumulate all arguments of every such line (glibc would keep only the last `search`).
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf::default();
    for line in text.lines().map(str::trim) {
        if line.starts_with(['#', ';']) {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(key), Some(first)) = (words.next(), words.next()) else {
            continue;
        };
        match key {
            "nameserver" => conf.nameservers.push(first.to_string()),
            "domain" => conf.domain = Some(first.to_string()),
            "search" => conf.search.extend(std::iter::once(first).chain(words).map(String::from)),
            "options" => conf.options.extend(std::iter::once(first).chain(words).map(String::from)),
            _ => {}
        }
    }
    conf
}

/// Read and parse the file named by `resolvConf`.
pub fn read_resolv_conf(path: &Path) -> Result<ResolvConf, Error> {
    let bytes = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    Ok(parse_resolv_conf(&String::from_utf8_lossy(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_reference() {
        let text = "# comment\n; other comment\n\nnameserver 10.0.0.53\nnameserver  2001:db8::53 extra\n\
                    domain example.com\ndomain last.example\nsearch a.example b.example\nsearch c.example\n\
                    options ndots:5 timeout:1\noptions rotate\nnameserver\nsortlist 10.0.0.0\n  nameserver 10.0.0.54  \n";
        let conf = parse_resolv_conf(text);
        assert_eq!(conf.nameservers, ["10.0.0.53", "2001:db8::53", "10.0.0.54"]);
        assert_eq!(conf.domain.as_deref(), Some("last.example"));
        assert_eq!(conf.search, ["a.example", "b.example", "c.example"]);
        assert_eq!(conf.options, ["ndots:5", "timeout:1", "rotate"]);
    }

    #[test]
    fn empty_text_gives_empty_conf() {
        assert_eq!(parse_resolv_conf(""), ResolvConf::default());
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err = read_resolv_conf(Path::new("/nonexistent/twill/resolv.conf")).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Io);
        assert!(err.to_string().contains("/nonexistent/twill/resolv.conf"));
    }
}
