//! Directories of golden files, one file `NAME.EXT` per case: what a renderer produces must
//! equal its file byte for byte, and no file may outlive its case. `TWILL_BLESS=1` rewrites
//! the files instead of comparing; review the diff.

use std::path::Path;

/// Compares each `(name, rendered)` case with `dir/NAME.EXT`, or under `TWILL_BLESS=1`
/// writes them; fails with every differing case's output.
pub fn assert_golden_files(dir: &Path, ext: &str, cases: impl IntoIterator<Item = (String, String)>) {
    let bless = std::env::var_os("TWILL_BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, got) in cases {
        let path = dir.join(format!("{name}.{ext}"));
        if bless {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
            std::fs::write(&path, &got).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            continue;
        }
        if std::fs::read_to_string(&path).unwrap_or_default() != got {
            stale.push(format!("--- {} differs; got:\n{got}", path.display()));
        }
    }
    assert!(stale.is_empty(), "{}\n(run with TWILL_BLESS=1 to regenerate)", stale.join("\n"));
}

/// Fails unless the `.EXT` files of `dir` are exactly the cases `names`.
pub fn assert_no_stale_golden_files<'a>(dir: &Path, ext: &str, names: impl IntoIterator<Item = &'a str>) {
    let suffix = format!(".{ext}");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(&suffix).map(str::to_string))
        .collect();
    files.sort();
    let mut cases: Vec<String> = names.into_iter().map(str::to_string).collect();
    cases.sort();
    assert_eq!(files, cases, "remove stale golden files");
}
