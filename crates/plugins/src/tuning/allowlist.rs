//! The sysctl allowlist of the reference tuning plugin, `/etc/cni/tuning/allowlist.conf`: one
//! regular expression per line; when the file exists, every configured key must match one of
//! them (unanchored, like Go's `regexp.MatchString`).
//!
//! twill carries no regex engine, so this evaluates the part of RE2 that allowlists use —
//! literals and escapes, `.`, classes, `\d \w \s`, groups with `|`, `* + ? {m,n}`, `^ $` —
//! with a small backtracking matcher, and refuses anything else: an expression it cannot
//! evaluate makes ADD fail (closed) rather than let a key through.

use cni_spec::Error;

/// The reference's allowlist file.
pub const ALLOWLIST: &str = "/etc/cni/tuning/allowlist.conf";

/// The allowlist's text, `None` when the file does not exist.
pub fn load(path: &str) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read sysctl allowlist {path}: {e}"))),
    }
}

/// Every key must match a line of `allowlist` (code 7 naming the first that does not).
pub fn check(keys: &[&str], allowlist: &str) -> Result<(), Error> {
    let mut patterns = Vec::new();
    for line in allowlist.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let alts = Parser { chars: line.chars().collect(), pos: 0 }.parse().map_err(|why| {
            Error::invalid_config(format!("tuning: cannot evaluate allowlist pattern {line:?}: {why}"))
        })?;
        patterns.push((line, alts));
    }
    for key in keys {
        if !patterns.iter().any(|(_, alts)| search(alts, key)) {
            let list: Vec<&str> = patterns.iter().map(|(l, _)| *l).collect();
            return Err(Error::invalid_config(format!(
                "tuning: sysctl {key} is not allowed; only sysctls matching {list:?} are"
            )));
        }
    }
    Ok(())
}

#[derive(Debug)]
enum Node {
    Char(char),
    Any,
    Class { ranges: Vec<(char, char)>, negated: bool },
    Start,
    End,
    Group(Vec<Vec<Node>>),
    Repeat { node: Box<Node>, min: u32, max: Option<u32> },
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<char, String> {
        let c = self.peek().ok_or("unexpected end")?;
        self.pos += 1;
        Ok(c)
    }

    fn parse(mut self) -> Result<Vec<Vec<Node>>, String> {
        let alts = self.alternatives()?;
        match self.peek() {
            None => Ok(alts),
            Some(c) => Err(format!("unexpected {c:?}")),
        }
    }

    fn alternatives(&mut self) -> Result<Vec<Vec<Node>>, String> {
        let mut alts = vec![self.sequence()?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alts.push(self.sequence()?);
        }
        Ok(alts)
    }

    fn sequence(&mut self) -> Result<Vec<Node>, String> {
        let mut seq = Vec::new();
        while let Some(c) = self.peek().filter(|c| *c != '|' && *c != ')') {
            self.pos += 1;
            let atom = match c {
                '^' => Node::Start,
                '$' => Node::End,
                '.' => Node::Any,
                '[' => self.class()?,
                '\\' => self.escape()?,
                '(' => self.group()?,
                '*' | '+' | '?' | '{' => return Err(format!("nothing to repeat before {c:?}")),
                c => Node::Char(c),
            };
            seq.push(self.quantified(atom)?);
        }
        Ok(seq)
    }

    fn group(&mut self) -> Result<Node, String> {
        if self.peek() == Some('?') {
            if self.chars.get(self.pos + 1) != Some(&':') {
                return Err("flags and named groups are not supported".into());
            }
            self.pos += 2;
        }
        let alts = self.alternatives()?;
        if self.next()? != ')' {
            return Err("missing )".into());
        }
        Ok(Node::Group(alts))
    }

    fn escape(&mut self) -> Result<Node, String> {
        let digits = vec![('0', '9')];
        let word = vec![('0', '9'), ('A', 'Z'), ('a', 'z'), ('_', '_')];
        let space = vec![('\t', '\r'), (' ', ' ')];
        Ok(match self.next()? {
            'd' => Node::Class { ranges: digits, negated: false },
            'D' => Node::Class { ranges: digits, negated: true },
            'w' => Node::Class { ranges: word, negated: false },
            'W' => Node::Class { ranges: word, negated: true },
            's' => Node::Class { ranges: space, negated: false },
            'S' => Node::Class { ranges: space, negated: true },
            c if c.is_ascii_punctuation() => Node::Char(c),
            c => return Err(format!("escape \\{c} is not supported")),
        })
    }

    fn class_char(&mut self) -> Result<char, String> {
        match self.next()? {
            '\\' => match self.next()? {
                c if c.is_ascii_punctuation() => Ok(c),
                c => Err(format!("escape \\{c} inside [] is not supported")),
            },
            '[' if self.peek() == Some(':') => Err("POSIX classes are not supported".into()),
            c => Ok(c),
        }
    }

    fn class(&mut self) -> Result<Node, String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        while self.peek() != Some(']') || first {
            first = false;
            let lo = self.class_char()?;
            let is_range =
                self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|c| *c != ']');
            if is_range {
                self.pos += 1;
                ranges.push((lo, self.class_char()?));
            } else {
                ranges.push((lo, lo));
            }
        }
        self.pos += 1;
        Ok(Node::Class { ranges, negated })
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => return self.counted(atom),
            _ => return Ok(atom),
        };
        self.pos += 1;
        self.skip_lazy();
        Ok(Node::Repeat { node: Box::new(atom), min, max })
    }

    /// `{m}`, `{m,}` or `{m,n}`.
    fn counted(&mut self, atom: Node) -> Result<Node, String> {
        let close = self.chars[self.pos..].iter().position(|c| *c == '}').ok_or("missing }")?;
        let body: String = self.chars[self.pos + 1..self.pos + close].iter().collect();
        self.pos += close + 1;
        let num = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("bad repeat count {{{body}}}"));
        let (min, max) = match body.split_once(',') {
            None => (num(&body)?, Some(num(&body)?)),
            Some((lo, "")) => (num(lo)?, None),
            Some((lo, hi)) => (num(lo)?, Some(num(hi)?)),
        };
        self.skip_lazy();
        Ok(Node::Repeat { node: Box::new(atom), min, max })
    }

    /// Lazy and greedy repetition accept the same strings; only whether a key matches counts.
    fn skip_lazy(&mut self) {
        if self.peek() == Some('?') {
            self.pos += 1;
        }
    }
}

/// Whether `alts` matches anywhere in `text`.
fn search(alts: &[Vec<Node>], text: &str) -> bool {
    let s: Vec<char> = text.chars().collect();
    (0..=s.len()).any(|i| alts.iter().any(|seq| seq_at(seq, &s, i, &mut |_| true)))
}

fn seq_at(seq: &[Node], s: &[char], i: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    match seq.split_first() {
        None => k(i),
        Some((node, rest)) => node_at(node, s, i, &mut |j| seq_at(rest, s, j, k)),
    }
}

fn node_at(node: &Node, s: &[char], i: usize, k: &mut dyn FnMut(usize) -> bool) -> bool {
    let one = |ok: bool, k: &mut dyn FnMut(usize) -> bool| ok && k(i + 1);
    match node {
        Node::Char(c) => one(s.get(i) == Some(c), k),
        Node::Any => one(s.get(i).is_some_and(|c| *c != '\n'), k),
        Node::Class { ranges, negated } => {
            let inside = s.get(i).map(|c| ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&c)));
            one(inside.is_some_and(|x| x != *negated), k)
        }
        Node::Start => i == 0 && k(i),
        Node::End => i == s.len() && k(i),
        Node::Group(alts) => alts.iter().any(|seq| seq_at(seq, s, i, k)),
        Node::Repeat { node, min, max } => repeat_at(node, *min, *max, 0, s, i, k),
    }
}

/// Greedy: one more repetition first, then stopping here once `min` is reached.
fn repeat_at(
    node: &Node,
    min: u32,
    max: Option<u32>,
    count: u32,
    s: &[char],
    i: usize,
    k: &mut dyn FnMut(usize) -> bool,
) -> bool {
    let more = max.is_none_or(|m| count < m)
        && node_at(node, s, i, &mut |j| {
            (j != i || count < min) && repeat_at(node, min, max, count + 1, s, j, k)
        });
    more || (count >= min && k(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        let alts = Parser { chars: pattern.chars().collect(), pos: 0 }.parse().unwrap();
        search(&alts, text)
    }

    #[test]
    fn the_documented_allowlist_shapes() {
        assert!(matches(r"^net\.ipv4\.conf\.IFNAME\.[a-z_]*$", "net.ipv4.conf.IFNAME.arp_notify"));
        assert!(!matches(r"^net\.ipv4\.conf\.IFNAME\.[a-z_]*$", "net.ipv4.conf.IFNAME.arp-notify"));
        assert!(matches(r"^net\.ipv4\.ip_forward$", "net.ipv4.ip_forward"));
        assert!(!matches(r"^net\.ipv4\.ip_forward$", "net.ipv4.ip_forwarding"));
        assert!(matches(r"ip_forward", "net.ipv4.ip_forward"), "unanchored like MatchString");
        assert!(matches(
            r"^net\.(ipv4|ipv6)\.conf\.\w+\.(rp_filter|accept_ra)$",
            "net.ipv6.conf.eth0.accept_ra"
        ));
        assert!(!matches(
            r"^net\.(ipv4|ipv6)\.conf\.\w+\.(rp_filter|accept_ra)$",
            "net.core.conf.x.rp_filter"
        ));
        assert!(matches(r"^net\.core\.somaxconn$|^net\.ipv4\.tcp_.+", "net.ipv4.tcp_syncookies"));
        assert!(matches(r"^a{2,3}$", "aaa") && !matches(r"^a{2,3}$", "aaaa") && !matches(r"^a{2}$", "a"));
        assert!(matches(r"^[^.]+\.x?y$", "net.y") && !matches(r"^[^.]+$", "a.b"));
        assert!(matches(r"^(?:a|b)*c$", "ababc"));
    }

    #[test]
    fn unsupported_syntax_fails_closed() {
        for p in [r"(?i)net", r"\bnet", r"[[:alpha:]]", r"net(", r"*net", r"\pL"] {
            let err = check(&["net.core.somaxconn"], p).expect_err(p);
            assert_eq!(err.code.code(), 7);
            assert!(err.msg.contains("cannot evaluate allowlist pattern"), "{err}");
        }
    }

    #[test]
    fn keys_outside_the_list_are_refused() {
        let list = "^net\\.core\\.somaxconn$\n\n  ^net\\.ipv4\\.conf\\.IFNAME\\.[a-z_]*$  \n";
        assert!(check(&["net.core.somaxconn", "net.ipv4.conf.IFNAME.rp_filter"], list).is_ok());
        let err = check(&["net.core.somaxconn", "net.ipv4.ip_forward"], list).unwrap_err();
        assert!(err.msg.contains("sysctl net.ipv4.ip_forward is not allowed"), "{err}");
    }
}
