//! The cluster datastore as multus reads it: NetworkAttachmentDefinitions and the pod's
//! annotations (its PodMeta, what `twill cluster apply` of a Pod manifest or `twill lab pod
//! add --annotation` wrote). Opened on first use, once per invocation, and only by ADD and
//! STATUS: DEL, CHECK and GC work from the delegate cache alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use cluster::record::RecordError;
use cluster::store::StoreError;
use cluster::{Datastore, DatastoreConf, NetAttachDef, Registry};
use cni_spec::{Error, ErrorCode};

use super::resolve::Cluster;

/// The datastore of the config, if any.
pub struct DatastoreCluster {
    conf: Option<DatastoreConf>,
    store: Option<Arc<dyn Datastore>>,
}

/// A datastore failure as a CNI error: an unreachable datastore is "try again later".
pub fn store_error(conf: &DatastoreConf, e: &StoreError) -> Error {
    let code = if e.is_unavailable() { ErrorCode::TryAgainLater } else { ErrorCode::Io };
    Error::new(code, format!("multus: datastore {conf}: {e}"))
}

fn record_error(conf: &DatastoreConf, e: RecordError) -> Error {
    match e {
        RecordError::Store(s) => store_error(conf, &s),
        other => Error::new(ErrorCode::Io, format!("multus: datastore {conf}: {other}")),
    }
}

impl DatastoreCluster {
    pub fn new(conf: Option<DatastoreConf>) -> DatastoreCluster {
        DatastoreCluster { conf, store: None }
    }

    fn open(&mut self) -> Result<(Arc<dyn Datastore>, DatastoreConf), Error> {
        let conf =
            self.conf.clone().ok_or_else(|| Error::invalid_config("multus: no datastore is configured"))?;
        if let Some(s) = &self.store {
            return Ok((s.clone(), conf));
        }
        let store = conf.open().map_err(|e| store_error(&conf, &e))?;
        self.store = Some(store.clone());
        Ok((store, conf))
    }

    /// One round trip that proves the datastore answers (STATUS).
    pub fn check(&mut self) -> Result<(), Error> {
        let (store, conf) = self.open()?;
        store.check().map_err(|e| store_error(&conf, &e))
    }
}

impl Cluster for DatastoreCluster {
    fn available(&self) -> bool {
        self.conf.is_some()
    }

    fn definition(&mut self, namespace: &str, name: &str) -> Result<Option<NetAttachDef>, Error> {
        let (store, conf) = self.open()?;
        Registry::new(store.as_ref()).net_attach_def(namespace, name).map_err(|e| record_error(&conf, e))
    }

    fn pod_annotations(
        &mut self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error> {
        let (store, conf) = self.open()?;
        let meta =
            Registry::new(store.as_ref()).pod_meta(namespace, name).map_err(|e| record_error(&conf, e))?;
        Ok(meta.map(|m| m.annotations))
    }
}
