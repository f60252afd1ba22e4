//! The bgp backend's settings: twilld's `--bgp-*` and `--bird` flags (so also keys of its
//! `--config` file) and their validated form, [`BgpConf`].

use std::net::IpAddr;
use std::path::PathBuf;

use cluster::bgppeer::check_asn;
use ipnet::IpNet;
use policy::Labels;

/// The bgp backend's flags (ignored by the other backends). Switches take `--flag`,
/// `--flag=true|false` or, in the config file, `flag = true|false`.
#[derive(Debug, Clone, clap::Args)]
pub struct BgpArgs {
    /// The cluster's AS number.
    #[arg(long, default_value_t = 64512)]
    pub bgp_as: u32,
    /// This node's own AS number (default: the cluster's).
    #[arg(long)]
    pub bgp_node_as: Option<u32>,
    /// Make this node a route reflector (so does the node label twill.dev/route-reflector=true).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub bgp_route_reflector: bool,
    /// Full iBGP mesh between the nodes when no node is a route reflector.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub bgp_mesh: bool,
    /// BGP hold time, seconds.
    #[arg(long, default_value_t = 90)]
    pub bgp_hold_seconds: u32,
    /// How long peers keep this node's routes while its BIRD restarts, seconds.
    #[arg(long, default_value_t = 120)]
    pub bgp_graceful_restart_seconds: u32,
    /// Reach nodes on another underlay network through vxlan, the others by BGP routes
    /// (Calico's CrossSubnet).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub bgp_cross_subnet_vxlan: bool,
    /// The BIRD 2 daemon (Debian package bird2).
    #[arg(long, default_value = "bird")]
    pub bird: PathBuf,
}

/// A node label that makes the node a route reflector (value `true`).
pub const ROUTE_REFLECTOR_LABEL: &str = "twill.dev/route-reflector";

/// The BGP settings of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpConf {
    /// The cluster's AS number.
    pub cluster_as: u32,
    /// This node's own AS number, overriding the cluster's.
    pub node_as: Option<u32>,
    pub route_reflector: bool,
    /// Full iBGP mesh between the nodes when no node is a route reflector.
    pub mesh: bool,
    pub hold_seconds: u32,
    pub graceful_restart_seconds: u32,
    /// vxlan to peers on another underlay network, BGP routes to the others.
    pub cross_subnet_vxlan: bool,
    /// The `bird` binary.
    pub bird: PathBuf,
    /// How often BIRD re-reads the kernel table (repairing deleted routes).
    pub scan_seconds: u32,
}

impl BgpConf {
    /// This node's AS number.
    pub fn asn(&self) -> u32 {
        self.node_as.unwrap_or(self.cluster_as)
    }

    /// A node reflects when its setting or its label ([`ROUTE_REFLECTOR_LABEL`]) says so.
    pub fn is_route_reflector(&self, labels: &Labels) -> bool {
        self.route_reflector || labels.get(ROUTE_REFLECTOR_LABEL).is_some_and(|v| v == "true")
    }
}

/// A bgp setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--backend bgp: {0}")]
pub struct BgpConfError(pub String);

impl BgpArgs {
    /// Checks the flags against the node's address, its pod network and the resync period
    /// (BIRD's kernel scan follows it).
    pub fn validate(
        &self,
        node_ip: IpAddr,
        cluster_cidr: IpNet,
        resync_seconds: u64,
    ) -> Result<BgpConf, BgpConfError> {
        let bad = |m: String| BgpConfError(m);
        for (flag, asn) in [("bgp-as", Some(self.bgp_as)), ("bgp-node-as", self.bgp_node_as)] {
            if let Some(asn) = asn {
                check_asn(asn).map_err(|reason| bad(format!("--{flag} {reason}")))?;
            }
        }
        // BIRD refuses hold times of 1 and 2 s (RFC 4271: 0 or at least 3).
        if !(3..=65535).contains(&self.bgp_hold_seconds) {
            return Err(bad(format!("--bgp-hold-seconds {} must be 3 to 65535", self.bgp_hold_seconds)));
        }
        let gr = self.bgp_graceful_restart_seconds;
        if !(1..=4095).contains(&gr) {
            return Err(bad(format!("--bgp-graceful-restart-seconds {gr} must be 1 to 4095 (RFC 4724)")));
        }
        if cluster_cidr.addr().is_ipv4() && !node_ip.is_ipv4() {
            return Err(bad(
                "IPv4 pod subnets are announced over IPv4 sessions: --node-ip must be IPv4".into()
            ));
        }
        Ok(BgpConf {
            cluster_as: self.bgp_as,
            node_as: self.bgp_node_as,
            route_reflector: self.bgp_route_reflector,
            mesh: self.bgp_mesh,
            hold_seconds: self.bgp_hold_seconds,
            graceful_restart_seconds: gr,
            cross_subnet_vxlan: self.bgp_cross_subnet_vxlan,
            bird: self.bird.clone(),
            scan_seconds: u32::try_from(resync_seconds).unwrap_or(u32::MAX),
        })
    }
}
