//! twill-pod's nudge: a unix datagram socket in the state directory. Any datagram wakes the
//! reconciler, so a pod is published right after its ADD instead of at the next resync.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::mpsc::Sender;

use crate::watcher::Input;

/// Binds `path` (replacing a socket left by an earlier run) and forwards wake-ups to `tx`
/// from a thread that ends when the receiver is gone.
pub fn spawn(path: &Path, tx: Sender<Input>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let sock = UnixDatagram::bind(path)?;
    std::thread::Builder::new().name("twilld-notify".into()).spawn(move || {
        let mut buf = [0u8; 64];
        while sock.recv(&mut buf).is_ok() {
            if tx.send(Input::Changed).is_err() {
                return;
            }
        }
    })?;
    Ok(())
}
