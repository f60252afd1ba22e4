//! Golden files of the nftables compiler: tests/golden/NAME.nft is the ruleset compiled for
//! node n1 (pods a and b of x, y, z) of the e2e world plus the case's policies. Regenerate
//! with `TWILL_BLESS=1 cargo test -p twill-policy --test golden`; review the diff.

mod common;

use common::golden_cases::{CASES, golden_dir, render};

#[test]
fn compiled_rulesets_match_golden_files() {
    let bless = std::env::var_os("TWILL_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, yaml) in CASES {
        let path = golden_dir().join(format!("{name}.nft"));
        let got = render(name, yaml);
        if bless {
            std::fs::write(&path, &got).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            stale.push(format!("--- {} differs; got:\n{got}", path.display()));
        }
    }
    assert!(stale.is_empty(), "{}\n(run with TWILL_BLESS=1 to regenerate)", stale.join("\n"));
}

#[test]
fn every_golden_file_is_a_case() {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".nft").map(str::to_string))
        .collect();
    names.sort();
    let mut cases: Vec<String> = CASES.iter().map(|(n, _)| n.to_string()).collect();
    cases.sort();
    assert_eq!(names, cases, "remove stale golden files");
}
