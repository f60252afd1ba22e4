//! Reading `iptables-save` output and writing the `iptables-restore` input that changes it
//! (pure). Rules are matched as iptables-save prints them, so what was written compares
//! equal to what is read back.

/// Whether `saved` declares `chain`.
pub fn has_chain(saved: &str, chain: &str) -> bool {
    saved.lines().any(|l| l.starts_with(&format!(":{chain} ")))
}

/// Whether `saved` has a rule in `from` jumping to `to`.
pub fn has_jump(saved: &str, from: &str, to: &str) -> bool {
    saved.lines().any(|l| l.starts_with(&format!("-A {from} ")) && l.ends_with(&format!("-j {to}")))
}

/// The owner a rule line carries in its comment `"TAG OWNER"`.
pub fn tagged_owner<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    line.split(&format!("--comment \"{tag} ")).nth(1)?.split('"').next()
}

/// Every owner tagged `tag` in `saved`, each once, in order of appearance.
pub fn owners(saved: &str, tag: &str) -> Vec<String> {
    let mut owners: Vec<String> = Vec::new();
    for owner in saved.lines().filter_map(|l| tagged_owner(l, tag)) {
        if !owners.iter().any(|o| o == owner) {
            owners.push(owner.to_string());
        }
    }
    owners
}

/// The restore input deleting every rule of `saved` that `doomed` picks from `table`, `None`
/// when it picks none.
pub fn remove_rules(table: &str, saved: &str, doomed: impl Fn(&str) -> bool) -> Option<String> {
    let deletions: Vec<String> = saved
        .lines()
        .filter(|l| l.starts_with("-A ") && doomed(l))
        .map(|l| l.replacen("-A ", "-D ", 1))
        .collect();
    if deletions.is_empty() {
        return None;
    }
    Some(format!("*{table}\n{}\nCOMMIT\n", deletions.join("\n")))
}

/// The restore input deleting `chain` from `table`: the rules jumping to it, then its own
/// rules and the chain itself. `None` when `saved` does not declare it.
pub fn remove_chain(table: &str, saved: &str, chain: &str) -> Option<String> {
    if !has_chain(saved, chain) {
        return None;
    }
    let jump = format!("-j {chain}");
    let mut text = format!("*{table}\n");
    for line in saved.lines().filter(|l| l.starts_with("-A ") && l.ends_with(&jump)) {
        text += &line.replacen("-A ", "-D ", 1);
        text.push('\n');
    }
    text += &format!("-F {chain}\n-X {chain}\nCOMMIT\n");
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = "*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:POD-A - [0:0]
-A POSTROUTING -s 10.1.0.5/32 -m comment --comment \"twill n/a/eth0\" -j POD-A
-A POSTROUTING -s 10.1.0.6/32 -m comment --comment \"twill n/b/eth0\" -j POD-B
-A POD-A -d 10.1.0.0/24 -m comment --comment \"twill n/a/eth0\" -j ACCEPT
COMMIT
";

    #[test]
    fn chains_and_jumps() {
        assert!(has_chain(SAVED, "POD-A") && !has_chain(SAVED, "POD-B") && !has_chain(SAVED, "POD"));
        assert!(has_jump(SAVED, "POSTROUTING", "POD-A"));
        assert!(!has_jump(SAVED, "PREROUTING", "POD-A"));
    }

    #[test]
    fn owners_once_each_in_order() {
        assert_eq!(owners(SAVED, "twill"), ["n/a/eth0", "n/b/eth0"]);
        assert!(owners(SAVED, "twill-portmap").is_empty());
        assert_eq!(tagged_owner("-A X -m comment --comment \"t o/p\" -j Y", "t"), Some("o/p"));
    }

    #[test]
    fn removing_a_chain_deletes_its_jumps_first() {
        assert_eq!(
            remove_chain("nat", SAVED, "POD-A").unwrap(),
            "*nat
-D POSTROUTING -s 10.1.0.5/32 -m comment --comment \"twill n/a/eth0\" -j POD-A
-F POD-A
-X POD-A
COMMIT
"
        );
        assert_eq!(remove_chain("nat", SAVED, "POD-B"), None);
    }

    #[test]
    fn removing_picked_rules() {
        let text = remove_rules("nat", SAVED, |l| tagged_owner(l, "twill") == Some("n/b/eth0")).unwrap();
        assert_eq!(
            text,
            "*nat\n-D POSTROUTING -s 10.1.0.6/32 -m comment --comment \"twill n/b/eth0\" -j POD-B\nCOMMIT\n"
        );
        assert_eq!(remove_rules("nat", SAVED, |_| false), None);
    }
}
