//! Helpers shared by twill's fuzz targets (`fuzz_targets/`, run by `scripts/fuzz.sh`).
//!
//! Structured inputs are NUL-separated fields ([`fields`]) rather than `arbitrary` byte
//! soup, so seed inputs (`seeds/TARGET/`) are readable text that a person can write and the
//! fuzzer starts from real configurations and records.

use std::path::PathBuf;

/// The first `n - 1` NUL-separated fields of `data`, then everything left as the last one;
/// missing fields are empty.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0).collect();
    out.resize(n, &[]);
    out
}

/// Every NUL-separated field of `data`.
pub fn all_fields(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == 0).collect()
}

/// Text of a field, lossily: the parsers under test take `&str`.
pub fn text(field: &[u8]) -> String {
    String::from_utf8_lossy(field).into_owned()
}

/// An empty directory for this process, emptied again on every call. It lives under
/// `$TMPDIR`, which `scripts/fuzz.sh` points at a directory of its own on tmpfs and removes
/// afterwards.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twill-fuzz-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("fuzz scratch dir {}: {e}", dir.display());
    }
    dir
}

/// Whether a file name is one the fuzzer may create: one path component, not `.`/`..`.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']) && name.len() <= 255
}
