//! BIRD itself reads every configuration twill's planners produce: each golden file of the
//! node planner (`src/bgp/testdata/*.conf`) goes through `bird -p` (parse only; nothing is
//! started, no socket or route is touched). A renderer change BIRD cannot parse fails here,
//! not on a node.

use std::path::PathBuf;
use std::process::Command;

fn bird_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("bird"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("bird is not installed: this test needs BIRD 2 (apt-get install bird2, see scripts/install-deps.sh)")
        })
}

#[test]
fn bird_parses_every_golden_configuration() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/bgp/testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "golden files missing in {}", dir.display());
    for f in files {
        let out = Command::new(bird_binary()).arg("-p").arg("-c").arg(&f).output().unwrap();
        assert!(
            out.status.success(),
            "bird -p -c {} failed: {}{}",
            f.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
