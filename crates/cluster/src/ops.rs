//! What the operator does to the cluster's objects — apply and delete manifests, label
//! namespaces and pods — written once, used by `twill cluster` and by `twill lab`'s commands
//! alike. Applying a file is one compare-and-swap transaction: every object is written or
//! none is, and a concurrent writer makes it start over rather than be overwritten.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::layout::{self, check_name};
use crate::manifest::Manifest;
use crate::record::{NamespaceRecord, PodMeta, RecordError, decode, encode};
use crate::store::{Compare, Datastore, Op, Txn};

/// The label Kubernetes puts on every namespace: its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// What happened to one object, as kubectl says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
    Deleted,
    NotFound,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "deleted",
            Outcome::NotFound => "not found",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{0}")]
    Invalid(String),
    #[error("the datastore kept changing under {what}; nothing was written (try again)")]
    Contended { what: String },
}

/// How often a transaction is retried when someone else wrote meanwhile.
const TRIES: usize = 8;

fn key_and_value(m: &Manifest) -> Result<(String, Vec<u8>), RecordError> {
    fn enc<T: Serialize>(key: String, v: &T) -> Result<(String, Vec<u8>), RecordError> {
        let bytes = encode(&key, v)?;
        Ok((key, bytes))
    }
    match m {
        Manifest::Policy(p) => {
            check_name("namespace", &p.namespace)?;
            check_name("policy", &p.name)?;
            enc(layout::policy_key(&p.namespace, &p.name), p)
        }
        Manifest::AdminPolicy(tier, p) => {
            check_name(tier.kind(), &p.name)?;
            enc(layout::admin_policy_key(*tier, &p.name), p)
        }
        Manifest::Namespace(ns) => {
            check_name("namespace", &ns.name)?;
            enc(layout::namespace_key(&ns.name), &with_name_label(ns.clone()))
        }
        Manifest::Pod(p) => {
            check_name("namespace", &p.namespace)?;
            check_name("pod", &p.name)?;
            enc(layout::pod_meta_key(&p.namespace, &p.name), p)
        }
        Manifest::BgpPeer(p) => {
            check_name("BGPPeer", &p.name)?;
            enc(layout::bgppeer_key(&p.name), p)
        }
        Manifest::NetAttachDef(n) => {
            check_name("namespace", &n.namespace)?;
            check_name("network-attachment-definition", &n.name)?;
            enc(layout::net_attach_def_key(&n.namespace, &n.name), n)
        }
    }
}

fn with_name_label(mut ns: NamespaceRecord) -> NamespaceRecord {
    ns.labels.insert(NAMESPACE_NAME_LABEL.to_string(), ns.name.clone());
    ns
}

/// One transaction per attempt: compare every key with what was read, write what differs.
fn transact<F>(store: &dyn Datastore, what: &str, mut build: F) -> Result<Vec<Outcome>, OpsError>
where
    F: FnMut(&dyn Datastore) -> Result<(Txn, Vec<Outcome>), OpsError>,
{
    for _ in 0..TRIES {
        let (txn, outcomes) = build(store)?;
        if txn.ops.is_empty() || store.txn(&txn).map_err(RecordError::from)? {
            return Ok(outcomes);
        }
    }
    Err(OpsError::Contended { what: what.to_string() })
}

/// Creates or replaces every object, all or nothing. Namespaces get their name label.
pub fn apply(store: &dyn Datastore, objects: &[Manifest]) -> Result<Vec<Outcome>, OpsError> {
    let wanted: Vec<(String, Vec<u8>)> = objects.iter().map(key_and_value).collect::<Result<_, _>>()?;
    transact(store, "the applied objects", |s| {
        let mut txn = Txn::default();
        let mut outcomes = Vec::new();
        for (key, value) in &wanted {
            let (cmp, outcome) = match s.get(key).map_err(RecordError::from)? {
                None => (Compare::Absent, Outcome::Created),
                Some(e) if e.value == *value => (Compare::ModRevision(e.mod_revision), Outcome::Unchanged),
                Some(e) => (Compare::ModRevision(e.mod_revision), Outcome::Configured),
            };
            txn.compare.push((key.clone(), cmp));
            if outcome != Outcome::Unchanged {
                txn.ops.push(Op::Put { key: key.clone(), value: value.clone(), lease: None });
            }
            outcomes.push(outcome);
        }
        Ok((txn, outcomes))
    })
}

/// Deletes every object of the file that exists, all or nothing.
pub fn delete(store: &dyn Datastore, objects: &[Manifest]) -> Result<Vec<Outcome>, OpsError> {
    let keys: Vec<String> =
        objects.iter().map(|m| key_and_value(m).map(|(k, _)| k)).collect::<Result<_, _>>()?;
    transact(store, "the deleted objects", |s| {
        let mut txn = Txn::default();
        let mut outcomes = Vec::new();
        for key in &keys {
            match s.get(key).map_err(RecordError::from)? {
                None => outcomes.push(Outcome::NotFound),
                Some(e) => {
                    txn.compare.push((key.clone(), Compare::ModRevision(e.mod_revision)));
                    txn.ops.push(Op::Delete { key: key.clone() });
                    outcomes.push(Outcome::Deleted);
                }
            }
        }
        Ok((txn, outcomes))
    })
}

/// One change of a label set: `k=v` sets, `k-` removes (kubectl's syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelChange {
    Set(String, String),
    Remove(String),
}

/// `k=v` or `k-`, keys and values checked as the API server does.
pub fn parse_label_changes(args: &[String]) -> Result<Vec<LabelChange>, OpsError> {
    if args.is_empty() {
        return Err(OpsError::Invalid("no label changes given (k=v sets, k- removes)".into()));
    }
    args.iter()
        .map(|arg| {
            let bad =
                |m: String| OpsError::Invalid(format!("label change {arg:?}: {m} (k=v sets, k- removes)"));
            if let Some(key) = arg.strip_suffix('-').filter(|k| !k.contains('=')) {
                policy::names::label_key(key).map_err(bad)?;
                return Ok(LabelChange::Remove(key.to_string()));
            }
            let (k, v) = arg.split_once('=').ok_or_else(|| bad("not k=v or k-".into()))?;
            policy::names::label_key(k).map_err(bad)?;
            policy::names::label_value(v).map_err(bad)?;
            Ok(LabelChange::Set(k.to_string(), v.to_string()))
        })
        .collect()
}

/// Applies `changes` to `labels`.
pub fn relabel(labels: &mut BTreeMap<String, String>, changes: &[LabelChange]) {
    for c in changes {
        match c {
            LabelChange::Set(k, v) => labels.insert(k.clone(), v.clone()),
            LabelChange::Remove(k) => labels.remove(k),
        };
    }
}

/// Changes a namespace's labels; a namespace without a record (pods may use one nobody
/// applied) gets one.
pub fn label_namespace(
    store: &dyn Datastore,
    name: &str,
    changes: &[LabelChange],
) -> Result<NamespaceRecord, OpsError> {
    let names_itself = |c: &LabelChange| matches!(c, LabelChange::Set(k, _) | LabelChange::Remove(k) if k == NAMESPACE_NAME_LABEL);
    if changes.iter().any(names_itself) {
        let msg = format!("{NAMESPACE_NAME_LABEL} is set by the cluster to the namespace's name");
        return Err(OpsError::Invalid(msg));
    }
    check_name("namespace", name)?;
    let fresh = NamespaceRecord { name: name.to_string(), labels: BTreeMap::new() };
    update(store, &layout::namespace_key(name), fresh, |ns| {
        relabel(&mut ns.labels, changes);
        ns.labels.insert(NAMESPACE_NAME_LABEL.to_string(), ns.name.clone());
    })
}

/// Changes a pod's labels (its [`PodMeta`], made if there is none yet).
pub fn label_pod(
    store: &dyn Datastore,
    namespace: &str,
    name: &str,
    changes: &[LabelChange],
) -> Result<PodMeta, OpsError> {
    check_name("namespace", namespace)?;
    check_name("pod", name)?;
    let fresh = PodMeta { namespace: namespace.into(), name: name.into(), ..PodMeta::default() };
    update(store, &layout::pod_meta_key(namespace, name), fresh, |m| relabel(&mut m.labels, changes))
}

/// Read-modify-write of one record (`fresh` when absent) by compare-and-swap.
fn update<T>(store: &dyn Datastore, key: &str, fresh: T, change: impl Fn(&mut T)) -> Result<T, OpsError>
where
    T: Serialize + serde::de::DeserializeOwned + Clone,
{
    for _ in 0..TRIES {
        let entry = store.get(key).map_err(RecordError::from)?;
        let mut value = match &entry {
            Some(e) => decode(e)?,
            None => fresh.clone(),
        };
        change(&mut value);
        let bytes = encode(key, &value)?;
        let txn = match &entry {
            None => Txn::create(key, &bytes, None),
            Some(e) if e.value == bytes => return Ok(value),
            Some(e) => Txn::update(key, e.mod_revision, &bytes, None),
        };
        if store.txn(&txn).map_err(RecordError::from)? {
            return Ok(value);
        }
    }
    Err(OpsError::Contended { what: key.to_string() })
}
