//! The node's attachment journal (`twill-pod` writes it at ADD, DEL and GC; twilld reads it
//! to publish the node's pods) as a crash, an older twill or a person may have left it.
//! Input: NUL-separated pairs of file name and content. Beyond no panic: every attachment
//! the journal lists is the one its key reads back, and removing that key makes it go: a DEL
//! can always take back what the node publishes.
#![no_main]

use cluster::attachment::Journal;
use libfuzzer_sys::fuzz_target;
use twill_fuzz::{all_fields, plain_name, scratch_dir, text};

fuzz_target!(|data: &[u8]| {
    let dir = scratch_dir("journal");
    for pair in all_fields(data).chunks(2) {
        let name = text(pair[0]);
        if plain_name(&name) {
            let _ = std::fs::write(dir.join(&name), pair.get(1).copied().unwrap_or_default());
        }
    }
    let journal = Journal::new(&dir);
    let Ok(listed) = journal.list() else { return };
    assert!(listed.windows(2).all(|w| w[0].key() <= w[1].key()), "listing not sorted");
    for a in &listed {
        let (network, id, ifname) = a.key();
        let got = journal.get(network, id, ifname).expect("get a listed attachment");
        assert_eq!(got.as_ref(), Some(a), "listed attachment reads back otherwise");
        journal.write(a).expect("rewrite a listed attachment");
        assert!(journal.remove(network, id, ifname).expect("remove"), "listed attachment not removable");
        let left = journal.list().expect("list after remove");
        assert!(left.iter().all(|b| b.key() != a.key()), "{:?} still listed after its DEL", a.key());
    }
});
