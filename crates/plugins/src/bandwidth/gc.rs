//! GC of the bandwidth plugin: IFBs whose DEL never came (a runtime that crashed or lost its
//! cache). Every IFB twill creates names its owner in its alias (`ip link set DEV alias
//! "twill NETWORK/CONTAINERID/IFNAME"`); GC removes the IFBs of this network whose attachment
//! is not in `cni.dev/valid-attachments`, together with the redirect and token bucket of the
//! host veth that still feeds one. IFBs without such an alias (made by the reference plugin)
//! are left to DEL.

use cni_spec::{Attachment, Error};
use nl::tc::INGRESS_HANDLE;
use nl::{Handle, Link};

use super::shape;
use crate::kernel::nl_error;
use crate::owner;

/// Marks the alias as twill's, so foreign aliases never parse as owners.
const ALIAS_PREFIX: &str = "twill ";

/// The alias of the IFB of one attachment.
pub fn alias(network: &str, container_id: &str, ifname: &str) -> String {
    format!("{ALIAS_PREFIX}{}", owner::tag(network, container_id, ifname))
}

/// The IFBs among `links` owned by attachments of `network` that are not in `valid`.
pub fn plan_stale<'a>(links: &'a [Link], network: &str, valid: &[Attachment]) -> Vec<&'a Link> {
    links
        .iter()
        .filter(|l| l.kind.as_deref() == Some("ifb"))
        .filter(|l| {
            l.alias
                .as_deref()
                .and_then(|a| a.strip_prefix(ALIAS_PREFIX))
                .is_some_and(|o| owner::is_stale(o, network, valid))
        })
        .collect()
}

/// Removes every stale IFB and what feeds it; failures are collected, every IFB is tried.
pub fn collect(host: &Handle, network: &str, valid: &[Attachment]) -> Vec<Error> {
    let links = match host.link_list() {
        Ok(links) => links,
        Err(e) => return vec![nl_error(e)],
    };
    let stale = plan_stale(&links, network, valid);
    if stale.is_empty() {
        return Vec::new();
    }
    let feeds = redirects(host, &links);
    let mut errors = Vec::new();
    for ifb in stale {
        let veth = feeds.iter().find(|(_, target)| *target == ifb.index).map(|(veth, _)| *veth);
        errors.extend(shape::teardown(host, veth, &ifb.name));
    }
    errors
}

/// (veth, link its ingress redirects to) for every host veth with a redirect filter; one
/// filter dump per veth. A veth that cannot be read feeds nothing.
fn redirects<'a>(host: &Handle, links: &'a [Link]) -> Vec<(&'a Link, u32)> {
    links
        .iter()
        .filter(|l| l.kind.as_deref() == Some("veth"))
        .flat_map(|veth| {
            let filters = host.filter_list(veth.index, INGRESS_HANDLE).unwrap_or_default();
            filters.into_iter().filter_map(move |f| f.redirect.map(|target| (veth, target)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, kind: &str, alias: Option<&str>) -> Link {
        Link {
            index,
            name: format!("l{index}"),
            kind: Some(kind.into()),
            mac: None,
            mtu: 1500,
            up: true,
            master: None,
            link: None,
            link_netnsid: None,
            promisc: false,
            txqlen: 32,
            allmulti: false,
            alias: alias.map(String::from),
        }
    }

    #[test]
    fn alias_names_the_attachment() {
        assert_eq!(alias("net", "c1", "eth0"), "twill net/c1/eth0");
    }

    #[test]
    fn only_twill_ifbs_of_this_network_without_a_valid_attachment_are_stale() {
        let links = vec![
            link(1, "ifb", Some("twill net/gone/eth0")),
            link(2, "ifb", Some("twill net/keep/eth0")),
            link(3, "ifb", Some("twill other/gone/eth0")),
            link(4, "ifb", None),
            link(5, "ifb", Some("net/gone/eth0")),
            link(6, "veth", Some("twill net/gone/eth0")),
            link(7, "ifb", Some("twill net/keep/eth1")),
        ];
        let valid = vec![Attachment { container_id: "keep".into(), ifname: "eth0".into() }];
        let stale: Vec<u32> = plan_stale(&links, "net", &valid).iter().map(|l| l.index).collect();
        assert_eq!(stale, vec![1, 7]);
        let all: Vec<u32> = plan_stale(&links, "net", &[]).iter().map(|l| l.index).collect();
        assert_eq!(all, vec![1, 2, 7]);
    }
}
