//! Golden files of the nftables compiler: tests/golden/NAME.nft is the ruleset compiled for
//! node n1 (pods a and b of x, y, z) of the e2e world plus the case's policies. Regenerate
//! with `TWILL_BLESS=1 cargo test -p twill-policy --test golden`; review the diff.

mod common;

use common::golden_cases::{CASES, golden_dir, render};
use testkit::golden::{assert_golden_files, assert_no_stale_golden_files};

#[test]
fn compiled_rulesets_match_golden_files() {
    let cases = CASES.iter().map(|(name, yaml)| (name.to_string(), render(name, yaml)));
    assert_golden_files(&golden_dir(), "nft", cases);
}

#[test]
fn every_golden_file_is_a_case() {
    assert_no_stale_golden_files(&golden_dir(), "nft", CASES.iter().map(|(n, _)| *n));
}
