//! twilld's command line ([`Args`]) and its validated form ([`AgentConf`]). Everything that
//! can be checked without the kernel or the datastore is checked here, so a bad flag fails
//! before the node joins anything.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;

use crate::bgp::BgpConf;
use crate::bgppeer::check_asn;
use crate::layout::check_name;
use crate::log::LogFormat;
use crate::record::{BackendKind, RecordError};
use crate::store::{DatastoreConf, EtcdTls, StoreError};
use crate::subnet::{SubnetError, SubnetPool};
use policy::Labels;

/// twill node agent: leases this node's pod subnet, writes its CNI config, routes to the
/// other nodes' pods, masquerades traffic leaving the cluster.
#[derive(Debug, Clone, Parser)]
#[command(name = "twilld", version, args_override_self = true)]
pub struct Args {
    /// This node's name in the cluster.
    #[arg(long)]
    pub node: String,
    /// This node's address on the underlay (host-gw next hop, vxlan VTEP).
    #[arg(long)]
    pub node_ip: IpAddr,
    /// The interface that carries node-to-node traffic.
    #[arg(long)]
    pub underlay_iface: String,
    /// `file:DIR` or `etcd:http[s]://HOST:PORT[,http[s]://HOST2:PORT...]`.
    #[arg(long)]
    pub datastore: String,
    /// CA certificate (PEM) of the etcd members, for https:// endpoints.
    #[arg(long)]
    pub etcd_cacert: Option<PathBuf>,
    /// Client certificate (PEM) presented to etcd.
    #[arg(long)]
    pub etcd_cert: Option<PathBuf>,
    /// Key of the client certificate (PEM).
    #[arg(long)]
    pub etcd_key: Option<PathBuf>,
    /// host-gw, vxlan or bgp.
    #[arg(long, default_value = "vxlan")]
    pub backend: BackendKind,
    #[command(flatten)]
    pub bgp: BgpArgs,
    #[arg(long)]
    pub cluster_cidr: IpNet,
    #[arg(long)]
    pub cluster_cidr6: Option<IpNet>,
    #[arg(long, default_value_t = 24)]
    pub node_subnet_size: u8,
    #[arg(long, default_value_t = 64)]
    pub node_subnet_size6: u8,
    /// Where the network lists are written.
    #[arg(long)]
    pub cni_conf_dir: PathBuf,
    /// Where the CNI plugins are installed (checked at start).
    #[arg(long)]
    pub cni_bin_dir: PathBuf,
    /// The agent's own state (remembered subnet, host-local's data).
    #[arg(long)]
    pub state_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:9099")]
    pub health_listen: SocketAddr,
    #[arg(long, default_value_t = 2)]
    pub resync_seconds: u64,
    #[arg(long, default_value_t = 30)]
    pub lease_ttl_seconds: u64,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Masquerade pod traffic leaving the cluster; off when the network itself routes the pod
    /// subnets (BGP peering with the routers).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub masquerade: bool,
    /// This node's labels, k=v,k2=v2 (BGPPeer node selectors match them; the label
    /// twill.dev/route-reflector=true makes the node a route reflector).
    #[arg(long, default_value = "")]
    pub node_labels: String,
}

/// The BGP backend's flags (ignored by the others).
#[derive(Debug, Clone, clap::Args)]
pub struct BgpArgs {
    /// The cluster's AS number.
    #[arg(long, default_value_t = 64512)]
    pub bgp_as: u32,
    /// This node's own AS number (default: the cluster's).
    #[arg(long)]
    pub bgp_node_as: Option<u32>,
    /// Make this node a route reflector (so does the node label twill.dev/route-reflector=true).
    #[arg(long)]
    pub bgp_route_reflector: bool,
    /// Full iBGP mesh between the nodes when no node is a route reflector.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub bgp_mesh: bool,
    /// BGP hold time.
    #[arg(long, default_value_t = 90)]
    pub bgp_hold_seconds: u32,
    /// How long peers keep this node's routes while its BIRD restarts.
    #[arg(long, default_value_t = 120)]
    pub bgp_graceful_restart_seconds: u32,
    /// Reach nodes on another underlay network through vxlan, the others by BGP routes
    /// (Calico's CrossSubnet).
    #[arg(long)]
    pub bgp_cross_subnet_vxlan: bool,
    /// The BIRD 2 daemon (Debian package bird2).
    #[arg(long, default_value = "bird")]
    pub bird: PathBuf,
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
    pub bgp: Option<BgpConf>,
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
    #[error("--backend bgp: {0}")]
    Bgp(String),
    #[error("--node-labels: {0}")]
    Labels(String),
}

fn invalid(flag: &'static str, value: impl ToString, reason: &'static str) -> ConfError {
    ConfError::Invalid { flag, value: value.to_string(), reason }
}

impl Args {
    /// Checks the flags and their combinations.
    pub fn validate(&self) -> Result<AgentConf, ConfError> {
        check_name("node", &self.node)?;
        if self.node_ip.is_unspecified() || self.node_ip.is_loopback() || self.node_ip.is_multicast() {
            return Err(invalid("node-ip", self.node_ip, "must be a unicast address of the underlay"));
        }
        if self.underlay_iface.is_empty() || self.underlay_iface.len() > nl::link::IFNAME_MAX {
            return Err(invalid("underlay-iface", &self.underlay_iface, "not an interface name"));
        }
        let pool = SubnetPool::new(self.cluster_cidr, self.node_subnet_size)
            .map_err(|source| ConfError::Subnet { flag: "cluster-cidr", source })?;
        let pool6 = self.pool6()?;
        if pool6.is_some() && !self.cluster_cidr.addr().is_ipv4() {
            return Err(invalid(
                "cluster-cidr",
                self.cluster_cidr,
                "must be IPv4 when --cluster-cidr6 is given",
            ));
        }
        if self.resync_seconds == 0 {
            return Err(invalid("resync-seconds", self.resync_seconds, "must be at least 1"));
        }
        // etcd refuses shorter leases, and renewing at a third of the TTL needs a second.
        if self.lease_ttl_seconds < 3 {
            return Err(invalid("lease-ttl-seconds", self.lease_ttl_seconds, "must be at least 3"));
        }
        Ok(AgentConf {
            node: self.node.clone(),
            node_ip: self.node_ip,
            underlay: self.underlay_iface.clone(),
            datastore: DatastoreConf::parse(&self.datastore, self.etcd_tls())?,
            backend: self.backend,
            pool,
            pool6,
            cni_conf_dir: self.cni_conf_dir.clone(),
            cni_bin_dir: self.cni_bin_dir.clone(),
            state_dir: self.state_dir.clone(),
            health_listen: self.health_listen,
            resync: Duration::from_secs(self.resync_seconds),
            ttl: Duration::from_secs(self.lease_ttl_seconds),
            log_format: self.log_format,
            masquerade: self.masquerade,
            labels: parse_labels(&self.node_labels)?,
            bgp: self.bgp_conf()?,
        })
    }

    fn etcd_tls(&self) -> EtcdTls {
        EtcdTls { cacert: self.etcd_cacert.clone(), cert: self.etcd_cert.clone(), key: self.etcd_key.clone() }
    }

    /// The BGP settings, with the bgp backend only.
    fn bgp_conf(&self) -> Result<Option<BgpConf>, ConfError> {
        if self.backend != BackendKind::Bgp {
            return Ok(None);
        }
        let b = &self.bgp;
        for (flag, asn) in [("bgp-as", Some(b.bgp_as)), ("bgp-node-as", b.bgp_node_as)] {
            if let Some(asn) = asn {
                check_asn(asn).map_err(|reason| ConfError::Bgp(format!("--{flag} {reason}")))?;
            }
        }
        // BIRD refuses hold times of 1 and 2 s (RFC 4271: 0 or at least 3).
        if b.bgp_hold_seconds < 3 || b.bgp_hold_seconds > 65535 {
            return Err(ConfError::Bgp(format!(
                "--bgp-hold-seconds {} must be 3 to 65535",
                b.bgp_hold_seconds
            )));
        }
        if b.bgp_graceful_restart_seconds == 0 || b.bgp_graceful_restart_seconds > 4095 {
            let s = b.bgp_graceful_restart_seconds;
            return Err(ConfError::Bgp(format!(
                "--bgp-graceful-restart-seconds {s} must be 1 to 4095 (RFC 4724)"
            )));
        }
        if self.cluster_cidr.addr().is_ipv4() && !self.node_ip.is_ipv4() {
            return Err(ConfError::Bgp(
                "IPv4 pod subnets are announced over IPv4 sessions: --node-ip must be IPv4".into(),
            ));
        }
        Ok(Some(BgpConf {
            cluster_as: b.bgp_as,
            node_as: b.bgp_node_as,
            route_reflector: b.bgp_route_reflector,
            mesh: b.bgp_mesh,
            hold_seconds: b.bgp_hold_seconds,
            graceful_restart_seconds: b.bgp_graceful_restart_seconds,
            cross_subnet_vxlan: b.bgp_cross_subnet_vxlan,
            bird: b.bird.clone(),
            scan_seconds: u32::try_from(self.resync_seconds).unwrap_or(u32::MAX),
        }))
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
        let bad = |reason| invalid("node-labels", pair, reason);
        let (k, v) = pair.split_once('=').ok_or_else(|| bad("not key=value"))?;
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
        Args::try_parse_from(base.iter().chain(extra))
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
        let c = args(&["--node-labels", "twill.dev/rack=rack1,role="]).unwrap().validate().unwrap();
        assert_eq!(c.labels.get("twill.dev/rack").map(String::as_str), Some("rack1"));
        assert_eq!(c.labels.get("role").map(String::as_str), Some(""));
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
            "--bgp-cross-subnet-vxlan",
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
}
