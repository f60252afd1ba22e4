//! The ADD result: allocations, routes and DNS in the shape of a CNI result, and the check
//! that a config's result fits its cniVersion, made before anything is reserved.

use std::path::Path;

use cni_spec::{CniResult, Dns, Error, IpConfig, Route, Version};
use ipam::Allocation;

use super::conf::HostLocalConf;
use super::error::to_cni;

/// IPs in range-set order, each with its range's prefix length and gateway; routes as
/// configured. IPAM results name no interface.
pub fn build(version: Version, allocs: &[Allocation], routes: &[Route], dns: Dns) -> CniResult {
    CniResult {
        cni_version: version,
        interfaces: Vec::new(),
        ips: allocs
            .iter()
            .map(|a| IpConfig { address: a.address, gateway: Some(a.gateway), interface: None })
            .collect(),
        routes: routes.to_vec(),
        dns,
    }
}

/// DNS from the `resolvConf` file, if one is set; an unreadable file fails ADD (code 5),
/// as in the reference.
pub fn read_dns(resolv_conf: Option<&Path>) -> Result<Dns, Error> {
    let Some(path) = resolv_conf else {
        return Ok(Dns::default());
    };
    let rc = ipam::read_resolv_conf(path).map_err(to_cni)?;
    Ok(Dns { nameservers: rc.nameservers, domain: rc.domain, search: rc.search, options: rc.options })
}

/// Refuses, before the store is touched, a config whose result cannot be written in its
/// cniVersion: 0.1.0/0.2.0 results hold one address per family (the reference's check and
/// message) and carry each route inside the block of its family.
pub fn check_representable(hl: &HostLocalConf) -> Result<(), Error> {
    let (v4, v6) = hl.ipam.addresses_per_family();
    if hl.version < Version::V0_3_0 && (v4 > 1 || v6 > 1) {
        return Err(Error::incompatible(format!(
            "CNI version {} does not support more than 1 address per family",
            hl.version_text
        )));
    }
    // The first address of every range set stands in for the ones ADD will pick.
    let stand_ins: Vec<Allocation> = hl
        .ipam
        .range_sets
        .iter()
        .enumerate()
        .filter_map(|(i, set)| set.ranges().first().map(|r| (i, r)))
        .map(|(range_set, r)| Allocation {
            address: r.address(r.range_start()),
            gateway: r.gateway(),
            range_set,
        })
        .collect();
    build(hl.version, &stand_ins, &hl.routes, Dns::default()).to_json(hl.version).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_skel::{CmdArgs, Command};
    use cni_spec::NetConf;
    use serde_json::json;

    fn conf(version: &str, ipam: serde_json::Value) -> HostLocalConf {
        let v = json!({"cniVersion": version, "name": "net", "type": "host-local", "ipam": ipam});
        let nc = NetConf::parse(v.to_string().as_bytes()).unwrap();
        HostLocalConf::parse(&nc, &CmdArgs::new(Command::Add)).unwrap()
    }

    #[test]
    fn result_carries_prefix_gateway_routes() {
        let hl = conf("1.0.0", json!({"subnet": "10.1.0.0/16", "routes": [{"dst": "0.0.0.0/0"}]}));
        let alloc = Allocation {
            address: "10.1.0.7/16".parse().unwrap(),
            gateway: "10.1.0.1".parse().unwrap(),
            range_set: 0,
        };
        let dns = Dns { nameservers: vec!["10.1.0.53".into()], ..Dns::default() };
        let out = build(hl.version, &[alloc], &hl.routes, dns).to_json(hl.version).unwrap();
        assert_eq!(
            out,
            json!({"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.7/16", "gateway": "10.1.0.1"}],
                   "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["10.1.0.53"]}})
        );
    }

    #[test]
    fn legacy_versions_take_one_address_per_family() {
        let two_v4 = json!({"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/24"}]]});
        for version in ["0.1.0", "0.2.0"] {
            let err = check_representable(&conf(version, two_v4.clone())).unwrap_err();
            assert_eq!(err.code.code(), 1);
            assert_eq!(
                err.msg,
                format!("CNI version {version} does not support more than 1 address per family")
            );
        }
        check_representable(&conf("0.3.0", two_v4)).unwrap();
        let dual = json!({"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}]]});
        check_representable(&conf("0.2.0", dual)).unwrap();
    }

    #[test]
    fn legacy_route_without_an_address_of_its_family_is_refused() {
        let ipam = json!({"subnet": "10.1.0.0/24", "routes": [{"dst": "::/0"}]});
        let err = check_representable(&conf("0.2.0", ipam.clone())).unwrap_err();
        assert_eq!(err.code.code(), 1, "{err}");
        check_representable(&conf("0.3.1", ipam)).unwrap();
    }

    #[test]
    fn unreadable_resolv_conf_is_io() {
        let err = read_dns(Some(Path::new("/nonexistent/twill/resolv.conf"))).unwrap_err();
        assert_eq!(err.code.code(), 5);
        assert_eq!(read_dns(None).unwrap(), Dns::default());
    }
}
