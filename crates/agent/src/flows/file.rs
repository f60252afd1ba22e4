//! `STATE/flows.jsonl`: every record as one JSON line, for log shippers and for reading on
//! the node. Bounded: past [`MAX_BYTES`] the file becomes `flows.jsonl.1` (replacing the
//! previous one) and a new file starts, so at most twice that stays on disk.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::record::FlowRecord;

pub const FILE: &str = "flows.jsonl";
pub const MAX_BYTES: u64 = 16 << 20;

/// The file being appended to.
#[derive(Debug)]
pub struct FlowFile {
    path: PathBuf,
    /// Buffered: the reader writes a datagram's records, then [`FlowFile::flush`]es once.
    file: Option<BufWriter<File>>,
    size: u64,
    max: u64,
}

impl FlowFile {
    pub fn new(state_dir: &Path) -> FlowFile {
        FlowFile::with_limit(state_dir, MAX_BYTES)
    }

    pub fn with_limit(state_dir: &Path, max: u64) -> FlowFile {
        FlowFile { path: state_dir.join(FILE), file: None, size: 0, max }
    }

    /// Appends `r`, rotating first when the file is full.
    pub fn append(&mut self, r: &FlowRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if self.file.is_some() && self.size + line.len() as u64 > self.max {
            self.flush()?;
            self.file = None;
            std::fs::rename(&self.path, self.path.with_extension("jsonl.1"))?;
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f = OpenOptions::new().create(true).append(true).open(&self.path)?;
                self.size = f.metadata()?.len();
                self.file.insert(BufWriter::new(f))
            }
        };
        file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// Writes out what [`FlowFile::append`] buffered.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_and_the_file_rotates() {
        let dir = testkit::TempDir::new("flowfile");
        let mut f = FlowFile::with_limit(dir.path(), 2000);
        let r = crate::flows::store::tests::record(1, "denied", Some("x/a"));
        for _ in 0..5 {
            f.append(&r).unwrap();
        }
        f.flush().unwrap();
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        let line: FlowRecord = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!((text.lines().count(), line), (5, r.clone()));
        for _ in 0..5 {
            f.append(&r).unwrap();
        }
        f.flush().unwrap();
        let old = std::fs::read_to_string(dir.path().join("flows.jsonl.1")).unwrap();
        let new = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert_eq!(old.lines().count() + new.lines().count(), 10);
        assert!(old.len() <= 2000 && new.len() <= 2000 && !new.is_empty());
    }
}
