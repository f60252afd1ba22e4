//! twilld's settings ([`Args`]) and their validated form ([`AgentConf`]). Settings come from
//! the command line, the environment (`TWILL_DATASTORE`, `TWILL_ETCD_*`) and a TOML file
//! (`--config`, [`crate::conf_file`]), in that order of precedence; [`Args::validate`] is the
//! one place they are checked. Everything that can be checked without the kernel or the
//! datastore is checked here, so a bad setting fails before the node joins anything.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;

use crate::bgp::conf::{BgpArgs, BgpConf, BgpConfError};
use crate::layout::check_name;
use crate::log::LogFormat;
use crate::record::{BackendKind, RecordError};
use crate::store::{DatastoreConf, EtcdTls, StoreError};
use crate::subnet::{SubnetError, SubnetPool};
use policy::Labels;

/// twill node agent: leases this node's pod subnet, writes its CNI config, routes to the
/// other nodes' pods, masquerades traffic leaving the cluster.
///
/// Every flag is also a key of the --config file (`node-ip = "10.0.0.11"`). Precedence:
/// command line, then environment, then the file, then the defaults. Settings marked
/// [required] must come from one of them.
#[derive(Debug, Clone, Parser)]
#[command(name = "twilld", version, args_override_self = true)]
pub struct Args {
    /// TOML file whose keys are these flags' names (flags given here override it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// [required] This node's name in the cluster.
    #[arg(long)]
    pub node: Option<String>,
    /// [required] This node's address on the underlay (host-gw next hop, vxlan VTEP).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// [required] The interface that carries node-to-node traffic.
    #[arg(long)]
    pub underlay_iface: Option<String>,
    /// [required] `file:DIR` or `etcd:http[s]://HOST:PORT[,http[s]://HOST2:PORT...]`.
    #[arg(long, env = "TWILL_DATASTORE")]
    pub datastore: Option<String>,
    /// CA certificate (PEM) of the etcd members, for https:// endpoints.
    #[arg(long, env = "TWILL_ETCD_CACERT")]
    pub etcd_cacert: Option<PathBuf>,
    /// Client certificate (PEM) presented to etcd.
    #[arg(long, env = "TWILL_ETCD_CERT")]
    pub etcd_cert: Option<PathBuf>,
    /// Key of the client certificate (PEM).
    #[arg(long, env = "TWILL_ETCD_KEY")]
    pub etcd_key: Option<PathBuf>,
    /// host-gw, vxlan or bgp.
    #[arg(long, default_value = "vxlan")]
    pub backend: BackendKind,
    #[command(flatten)]
    pub bgp: BgpArgs,
    /// [required] The pod network; node subnets are carved out of it.
    #[arg(long)]
    pub cluster_cidr: Option<IpNet>,
    #[arg(long)]
    pub cluster_cidr6: Option<IpNet>,
    #[arg(long, default_value_t = 24)]
    pub node_subnet_size: u8,
    #[arg(long, default_value_t = 64)]
    pub node_subnet_size6: u8,
    /// [required] Where the network lists are written.
    #[arg(long)]
    pub cni_conf_dir: Option<PathBuf>,
    /// [required] Where the CNI plugins are installed (checked at start).
    #[arg(long)]
    pub cni_bin_dir: Option<PathBuf>,
    /// [required] The agent's own state (remembered subnet, host-local's data).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:9099")]
    pub health_listen: SocketAddr,
    #[arg(long, default_value_t = 2)]
    pub resync_seconds: u64,
    #[arg(long, default_value_t = 30)]
    pub lease_ttl_seconds: u64,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Masquerade pod traffic leaving the cluster; false when the network itself routes the
    /// pod subnets (BGP peering with the routers).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub masquerade: bool,
    /// This node's labels, k=v,k2=v2 (BGPPeer node selectors match them; the label
    /// twill.dev/route-reflector=true makes a bgp node a route reflector).
    #[arg(long, default_value = "")]
    pub node_labels: String,
    /// Cluster-wide IPAM (`whereabouts`): a reservation whose node is gone or whose pod has
    /// no record is freed after looking so this long (longer than any ADD takes).
    #[arg(long, default_value_t = 120)]
    pub ipam_grace_seconds: u64,
    /// Flow logs of new connections the policy table decides (docs/flows.md): `off`,
    /// `denied` (refused connections and spoofed packets; allowed traffic pays nothing) or
    /// `all` (every new connection of a local pod, also of pods no policy selects).
    #[arg(long, default_value = "denied", value_parser = parse_flow_logs)]
    pub flow_logs: policy::FlowLogs,
}

fn parse_flow_logs(s: &str) -> Result<policy::FlowLogs, String> {
    s.parse()
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConf {
    pub node: String,
    pub node_ip: IpAddr,
    pub underlay: String,
    pub datastore: DatastoreConf,
    pub backend: BackendKind,
    pub pool: SubnetPool,
    pub pool6: Option<SubnetPool>,
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dir: PathBuf,
    pub state_dir: PathBuf,
    pub health_listen: SocketAddr,
    pub resync: Duration,
    pub ttl: Duration,
    pub log_format: LogFormat,
    pub masquerade: bool,
    pub labels: Labels,
    /// The bgp backend's settings (with `--backend bgp` only).
    pub bgp: Option<BgpConf>,
    pub ipam_grace: Duration,
    pub flow_logs: policy::FlowLogs,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error(transparent)]
    Name(#[from] RecordError),
    #[error(transparent)]
    Datastore(#[from] StoreError),
    #[error("--{flag}: {source}")]
    Subnet { flag: &'static str, source: SubnetError },
    #[error("--{flag} {value}: {reason}")]
    Invalid { flag: &'static str, value: String, reason: &'static str },
    #[error(transparent)]
    Bgp(#[from] BgpConfError),
    #[error("--node-labels: {0}")]
    Labels(String),
    #[error("--{flag} is required: give it on the command line or as `{flag} = ...` in the --config file")]
    Missing { flag: &'static str },
}

/// A setting without a default: present, or named in the error.
fn required<'a, T>(flag: &'static str, value: &'a Option<T>) -> Result<&'a T, ConfError> {
    value.as_ref().ok_or(ConfError::Missing { flag })
}

fn invalid(flag: &'static str, value: impl ToString, reason: &'static str) -> ConfError {
    ConfError::Invalid { flag, value: value.to_string(), reason }
}

impl Args {
    /// Checks the flags and their combinations.
    pub fn validate(&self) -> Result<AgentConf, ConfError> {
        let node = required("node", &self.node)?;
        let node_ip = *required("node-ip", &self.node_ip)?;
        let underlay = required("underlay-iface", &self.underlay_iface)?;
        let datastore = required("datastore", &self.datastore)?;
        let cluster_cidr = *required("cluster-cidr", &self.cluster_cidr)?;
        let cni_conf_dir = required("cni-conf-dir", &self.cni_conf_dir)?;
        let cni_bin_dir = required("cni-bin-dir", &self.cni_bin_dir)?;
        let state_dir = required("state-dir", &self.state_dir)?;
        check_name("node", node)?;
        if node_ip.is_unspecified() || node_ip.is_loopback() || node_ip.is_multicast() {
            return Err(invalid("node-ip", node_ip, "must be a unicast address of the underlay"));
        }
        if underlay.is_empty() || underlay.len() > nl::link::IFNAME_MAX {
            return Err(invalid("underlay-iface", underlay, "not an interface name"));
        }
        let pool = SubnetPool::new(cluster_cidr, self.node_subnet_size)
            .map_err(|source| ConfError::Subnet { flag: "cluster-cidr", source })?;
        let pool6 = self.pool6()?;
        if pool6.is_some() && !cluster_cidr.addr().is_ipv4() {
            return Err(invalid("cluster-cidr", cluster_cidr, "must be IPv4 when --cluster-cidr6 is given"));
        }
        if self.resync_seconds == 0 {
            return Err(invalid("resync-seconds", self.resync_seconds, "must be at least 1"));
        }
        // etcd refuses shorter leases, and renewing at a third of the TTL needs a second.
        if self.lease_ttl_seconds < 3 {
            return Err(invalid("lease-ttl-seconds", self.lease_ttl_seconds, "must be at least 3"));
        }
        Ok(AgentConf {
            node: node.clone(),
            node_ip,
            underlay: underlay.clone(),
            datastore: DatastoreConf::parse(datastore, self.etcd_tls())?,
            backend: self.backend,
            pool,
            pool6,
            cni_conf_dir: cni_conf_dir.clone(),
            cni_bin_dir: cni_bin_dir.clone(),
            state_dir: state_dir.clone(),
            health_listen: self.health_listen,
            resync: Duration::from_secs(self.resync_seconds),
            ttl: Duration::from_secs(self.lease_ttl_seconds),
            log_format: self.log_format,
            masquerade: self.masquerade,
            labels: parse_labels(&self.node_labels)?,
            bgp: match self.backend {
                BackendKind::Bgp => Some(self.bgp.validate(node_ip, cluster_cidr, self.resync_seconds)?),
                _ => None,
            },
            ipam_grace: Duration::from_secs(self.ipam_grace_seconds),
            flow_logs: self.flow_logs,
        })
    }

    fn etcd_tls(&self) -> EtcdTls {
        EtcdTls { cacert: self.etcd_cacert.clone(), cert: self.etcd_cert.clone(), key: self.etcd_key.clone() }
    }

    fn pool6(&self) -> Result<Option<SubnetPool>, ConfError> {
        let Some(cidr6) = self.cluster_cidr6 else { return Ok(None) };
        if !cidr6.addr().is_ipv6() {
            return Err(invalid("cluster-cidr6", cidr6, "must be an IPv6 network"));
        }
        SubnetPool::new(cidr6, self.node_subnet_size6)
            .map(Some)
            .map_err(|source| ConfError::Subnet { flag: "cluster-cidr6", source })
    }
}

/// `k=v,k2=v2` as labels, keys and values checked like Kubernetes checks them.
fn parse_labels(text: &str) -> Result<Labels, ConfError> {
    let mut labels = Labels::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| invalid("node-labels", pair, "not key=value"))?;
        labels.insert(k.to_string(), v.to_string());
    }
    let selector = policy::LabelSelector { match_labels: labels.clone(), match_expressions: Vec::new() };
    selector.validate().map_err(|e| ConfError::Labels(e.to_string()))?;
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Endpoint;

    fn args(extra: &[&str]) -> Result<Args, clap::Error> {
        let base = [
            "twilld",
            "--node",
            "node-1",
            "--node-ip",
            "10.100.0.11",
            "--underlay-iface",
            "eth0",
            "--datastore",
            "file:/run/x",
            "--backend",
            "vxlan",
            "--cluster-cidr",
            "10.244.0.0/16",
            "--cni-conf-dir",
            "/etc/cni/net.d",
            "--cni-bin-dir",
            "/opt/cni/bin",
            "--state-dir",
            "/var/lib/twilld",
        ];
        Args::load_from(base.iter().chain(extra), |_| None).map_err(|e| match e {
            crate::conf_file::LoadError::Cli(e) => e,
            crate::conf_file::LoadError::File(e) => panic!("no config file here: {e}"),
        })
    }

    #[test]
    fn contract_command_line_parses_with_defaults() {
        let c = args(&[]).unwrap().validate().unwrap();
        assert_eq!(c.node, "node-1");
        assert_eq!(c.datastore.endpoint, Endpoint::File("/run/x".into()));
        assert_eq!(c.pool.size(), 24);
        assert_eq!(c.pool6, None);
        assert_eq!(c.health_listen, "127.0.0.1:9099".parse().unwrap());
        assert_eq!((c.resync, c.ttl), (Duration::from_secs(2), Duration::from_secs(30)));
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn every_optional_flag() {
        let c = args(&[
            "--cluster-cidr6",
            "fd00:10:244::/56",
            "--node-subnet-size",
            "25",
            "--node-subnet-size6",
            "80",
            "--health-listen",
            "127.0.0.1:9100",
            "--resync-seconds",
            "5",
            "--lease-ttl-seconds",
            "10",
            "--log-format",
            "json",
            "--datastore",
            "etcd:http://127.0.0.1:2379",
        ])
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(c.pool6.unwrap().size(), 80);
        assert_eq!(c.pool.size(), 25);
        assert_eq!(c.datastore.endpoint, Endpoint::Etcd(vec!["http://127.0.0.1:2379".into()]));
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn bgp_settings_with_defaults_and_overrides() {
        let c = args(&["--backend", "bgp"]).unwrap().validate().unwrap();
        let b = c.bgp.unwrap();
        assert_eq!((b.asn(), b.mesh, b.route_reflector, b.cross_subnet_vxlan), (64512, true, false, false));
        assert_eq!((b.hold_seconds, b.graceful_restart_seconds, b.scan_seconds), (90, 120, 2));
        assert_eq!(b.bird, PathBuf::from("bird"));
        let c = args(&[
            "--backend",
            "bgp",
            "--bgp-as",
            "65000",
            "--bgp-node-as",
            "65001",
            "--bgp-route-reflector",
            "--bgp-mesh",
            "false",
            "--bgp-hold-seconds",
            "9",
            "--bgp-cross-subnet-vxlan=true",
            "--bird",
            "/usr/sbin/bird",
        ])
        .unwrap()
        .validate()
        .unwrap();
        let b = c.bgp.unwrap();
        assert_eq!((b.cluster_as, b.asn(), b.mesh, b.route_reflector), (65000, 65001, false, true));
        assert_eq!((b.hold_seconds, b.cross_subnet_vxlan), (9, true));
        assert!(args(&["--backend", "vxlan"]).unwrap().validate().unwrap().bgp.is_none());
        assert!(args(&["--backend", "udp"]).is_err());
    }

    #[test]
    fn bad_bgp_settings_are_rejected() {
        for extra in [
            &["--bgp-as", "0"][..],
            &["--bgp-node-as", "23456"],
            &["--bgp-hold-seconds", "2"],
            &["--bgp-graceful-restart-seconds", "0"],
            &["--node-ip", "fd00::11"],
        ] {
            let mut all = vec!["--backend", "bgp"];
            all.extend_from_slice(extra);
            let e = args(&all).unwrap().validate().unwrap_err();
            assert!(e.to_string().starts_with("--backend bgp: "), "{extra:?}: {e}");
        }
    }

    #[test]
    fn node_labels_and_masquerade() {
        let c = args(&["--node-labels", "twill.dev/rack=rack1,role=", "--masquerade", "false"]).unwrap();
        let c = c.validate().unwrap();
        assert_eq!(c.labels.get("twill.dev/rack").map(String::as_str), Some("rack1"));
        assert_eq!(c.labels.get("role").map(String::as_str), Some(""));
        assert!(!c.masquerade);
        assert!(args(&[]).unwrap().validate().unwrap().masquerade);
    }

    #[test]
    fn flow_logs_default_to_denied() {
        assert_eq!(args(&[]).unwrap().validate().unwrap().flow_logs, policy::FlowLogs::Denied);
        let all = args(&["--flow-logs", "all"]).unwrap().validate().unwrap();
        assert_eq!(all.flow_logs, policy::FlowLogs::All);
        let e = args(&["--flow-logs", "some"]).unwrap_err().to_string();
        assert!(e.contains("expected off, denied or all"), "{e}");
    }

    #[test]
    fn bad_combinations_are_rejected() {
        for extra in [
            &["--node", "Node_1"][..],
            &["--node-ip", "0.0.0.0"],
            &["--cluster-cidr", "10.244.1.0/16"],
            &["--node-subnet-size", "8"],
            &["--cluster-cidr6", "10.0.0.0/8"],
            &["--resync-seconds", "0"],
            &["--lease-ttl-seconds", "1"],
            &["--datastore", "zk:x"],
            &["--datastore", "etcd:https://10.0.0.1:2379"],
            &["--etcd-cacert", "/ca.pem"],
            &["--underlay-iface", "a-very-long-interface-name"],
            &["--node-labels", "a"],
            &["--node-labels", "a b=c"],
            &["--node-labels", "a=b c"],
        ] {
            assert!(args(extra).unwrap().validate().is_err(), "{extra:?}");
        }
    }

    #[test]
    fn missing_settings_name_the_flag_and_the_key() {
        let base = [
            ("--node", "node-1"),
            ("--node-ip", "10.100.0.11"),
            ("--underlay-iface", "eth0"),
            ("--datastore", "file:/run/x"),
            ("--cluster-cidr", "10.244.0.0/16"),
            ("--cni-conf-dir", "/etc/cni/net.d"),
            ("--cni-bin-dir", "/opt/cni/bin"),
            ("--state-dir", "/var/lib/twilld"),
        ];
        for (flag, _) in base {
            let kept = base.iter().filter(|(f, _)| *f != flag).flat_map(|(f, v)| [*f, *v]);
            let argv: Vec<&str> = std::iter::once("twilld").chain(kept).collect();
            let e = Args::load_from(argv, |_| None).unwrap().validate().unwrap_err().to_string();
            let key = flag.trim_start_matches('-');
            assert!(e.contains(flag) && e.contains(&format!("`{key} = ...`")), "{e}");
        }
    }
}
