//! The pod publisher and absent nodes (file store): another node's pod records are deleted
//! only once that node has been absent for the grace *and* the datastore has been healthy
//! long enough for its absence to be believed — after an outage every node record can vanish
//! at once while the nodes and their pods are fine (docs/adr/0015).

use std::time::Duration;

use testkit::TempDir;
use twill_agent::layout;
use twill_agent::pods::PodPublisher;
use twill_agent::record::{PodRecord, encode};
use twill_agent::store::{Datastore, FileStore, Txn};

fn pod_of(store: &dyn Datastore, node: &str, name: &str) {
    let rec = PodRecord {
        namespace: "x".into(),
        name: name.into(),
        node: node.into(),
        ips: vec!["10.244.2.5".parse().unwrap()],
        ..Default::default()
    };
    let key = layout::pod_key("x", name);
    assert!(store.txn(&Txn::create(&key, &encode(&key, &rec).unwrap(), None)).unwrap());
}

fn pods(store: &dyn Datastore) -> usize {
    store.list(layout::PODS).unwrap().entries.len()
}

#[test]
fn an_absent_nodes_pods_go_only_once_absence_is_believed() {
    let dir = TempDir::new("pods-absence");
    let store = FileStore::open(&dir.path().join("store")).unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir_all(&journal).unwrap();
    // node-2 has no node record: absent. Its pod record stays while the datastore is not
    // trusted, however long the grace has run.
    pod_of(&store, "node-2", "b");
    let mut publisher = PodPublisher::new("node-1", &journal, Duration::ZERO);
    for _ in 0..3 {
        let p = publisher.publish(&store, false).unwrap();
        assert_eq!(p.deleted, 0);
    }
    assert_eq!(pods(&store), 1);
    let p = publisher.publish(&store, true).unwrap();
    assert_eq!((p.deleted, pods(&store)), (1, 0));
}
