//! BIRD itself reads every configuration twill's planners produce: each golden file of the
//! node planner (`src/bgp/testdata/*.conf`) and of the lab's router and outside host
//! (`crates/cli/src/lab/testdata/*.conf`) goes through `bird -p` (parse only; nothing is
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
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dirs = [here.join("src/bgp/testdata"), here.join("../cli/src/lab/testdata")];
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in &dirs {
        let found: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        assert!(found.len() >= 4, "golden files missing in {}", dir.display());
        files.extend(found);
    }
    files.sort();
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
