//! Typed access to the cluster records over any [`Datastore`]: what the agent reads about its
//! peers, and what `twill lab` (and later the policy controller) writes about pods,
//! namespaces and policies.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::layout::{self, check_name};
use crate::multinet::NetAttachDef;
use crate::record::{
    AdminPolicyRecord, NamespaceRecord, NodeRecord, PodMeta, PodRecord, PolicyRecord, RecordError, decode,
    encode,
};
use crate::store::Datastore;

/// Records under one prefix, the ones that did not decode, and the revision they were read at.
#[derive(Debug)]
pub struct Records<T> {
    pub items: Vec<T>,
    pub errors: Vec<RecordError>,
    pub revision: u64,
}

/// The cluster's records in one datastore.
#[derive(Clone, Copy)]
pub struct Registry<'a> {
    store: &'a dyn Datastore,
}

impl<'a> Registry<'a> {
    pub fn new(store: &'a dyn Datastore) -> Registry<'a> {
        Registry { store }
    }

    /// Every record under `prefix`; undecodable ones are returned as errors, not fatal.
    pub fn list<T: DeserializeOwned>(&self, prefix: &str) -> Result<Records<T>, RecordError> {
        let listing = self.store.list(prefix)?;
        let (mut items, mut errors) = (Vec::new(), Vec::new());
        for e in &listing.entries {
            match decode(e) {
                Ok(v) => items.push(v),
                Err(err) => errors.push(err),
            }
        }
        Ok(Records { items, errors, revision: listing.revision })
    }

    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, RecordError> {
        self.store.get(key)?.map(|e| decode(&e)).transpose()
    }

    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), RecordError> {
        Ok(self.store.put(key, &encode(key, value)?, None)?)
    }

    /// False when there was no such key.
    pub fn delete(&self, key: &str) -> Result<bool, RecordError> {
        Ok(self.store.delete(key)?)
    }

    pub fn nodes(&self) -> Result<Records<NodeRecord>, RecordError> {
        self.list(layout::NODES)
    }

    pub fn node(&self, name: &str) -> Result<Option<NodeRecord>, RecordError> {
        check_name("node", name)?;
        self.get(&layout::node_key(name))
    }

    pub fn put_pod(&self, pod: &PodRecord) -> Result<(), RecordError> {
        check_name("namespace", &pod.namespace)?;
        check_name("pod", &pod.name)?;
        self.put(&layout::pod_key(&pod.namespace, &pod.name), pod)
    }

    /// False when there was no such pod.
    pub fn delete_pod(&self, namespace: &str, name: &str) -> Result<bool, RecordError> {
        Ok(self.store.delete(&layout::pod_key(namespace, name))?)
    }

    pub fn pods(&self) -> Result<Records<PodRecord>, RecordError> {
        self.list(layout::PODS)
    }

    pub fn put_pod_meta(&self, meta: &PodMeta) -> Result<(), RecordError> {
        check_name("namespace", &meta.namespace)?;
        check_name("pod", &meta.name)?;
        self.put(&layout::pod_meta_key(&meta.namespace, &meta.name), meta)
    }

    pub fn pod_meta(&self, namespace: &str, name: &str) -> Result<Option<PodMeta>, RecordError> {
        self.get(&layout::pod_meta_key(namespace, name))
    }

    /// False when there was no such record.
    pub fn delete_pod_meta(&self, namespace: &str, name: &str) -> Result<bool, RecordError> {
        Ok(self.store.delete(&layout::pod_meta_key(namespace, name))?)
    }

    pub fn pod_metas(&self) -> Result<Records<PodMeta>, RecordError> {
        self.list(layout::POD_META)
    }

    pub fn put_namespace(&self, ns: &NamespaceRecord) -> Result<(), RecordError> {
        check_name("namespace", &ns.name)?;
        self.put(&layout::namespace_key(&ns.name), ns)
    }

    pub fn delete_namespace(&self, name: &str) -> Result<bool, RecordError> {
        Ok(self.store.delete(&layout::namespace_key(name))?)
    }

    pub fn namespaces(&self) -> Result<Records<NamespaceRecord>, RecordError> {
        self.list(layout::NAMESPACES)
    }

    pub fn put_policy(&self, policy: &PolicyRecord) -> Result<(), RecordError> {
        check_name("namespace", &policy.namespace)?;
        check_name("policy", &policy.name)?;
        self.put(&layout::policy_key(&policy.namespace, &policy.name), policy)
    }

    pub fn delete_policy(&self, namespace: &str, name: &str) -> Result<bool, RecordError> {
        Ok(self.store.delete(&layout::policy_key(namespace, name))?)
    }

    pub fn policies(&self) -> Result<Records<PolicyRecord>, RecordError> {
        self.list(layout::POLICIES)
    }

    /// The AdminNetworkPolicies (`Tier::Admin`) or the BaselineAdminNetworkPolicy.
    pub fn admin_policies(&self, tier: policy::Tier) -> Result<Records<AdminPolicyRecord>, RecordError> {
        self.list(layout::admin_policies_prefix(tier))
    }

    pub fn net_attach_defs(&self) -> Result<Records<NetAttachDef>, RecordError> {
        self.list(layout::NET_ATTACH_DEFS)
    }

    pub fn net_attach_def(&self, namespace: &str, name: &str) -> Result<Option<NetAttachDef>, RecordError> {
        check_name("namespace", namespace)?;
        check_name("network-attachment-definition", name)?;
        self.get(&layout::net_attach_def_key(namespace, name))
    }
}
