//! Link attributes of CNI_IFNAME: what to back up before changing them (pure), changing
//! them, putting them back and checking them.

use cni_spec::Error;
use nl::{Handle, Link};

use super::backup::Backup;
use super::conf::TuningConf;
use crate::kernel::nl_error;

/// The current values of exactly the attributes `conf` changes.
pub fn plan_backup(conf: &TuningConf, link: &Link) -> Backup {
    Backup {
        mac: conf.mac.and(link.mac).map(|m| nl::format_mac(&m)),
        promisc: conf.promisc.then_some(link.promisc),
        mtu: conf.mtu.map(|_| link.mtu),
        allmulti: conf.allmulti.map(|_| link.allmulti),
        txqlen: conf.txqlen.map(|_| link.txqlen),
        sysctl: Default::default(),
        owner: None,
    }
}

/// Changes the attributes, in the reference's order.
pub fn apply(nl: &Handle, link: &Link, conf: &TuningConf) -> Result<(), Error> {
    let index = link.index;
    if let Some(mac) = conf.mac {
        nl.link_set_mac(index, mac).map_err(nl_error)?;
    }
    if conf.promisc {
        nl.link_set_promisc(index, true).map_err(nl_error)?;
    }
    if let Some(mtu) = conf.mtu {
        nl.link_set_mtu(index, mtu).map_err(nl_error)?;
    }
    if let Some(on) = conf.allmulti {
        nl.link_set_allmulti(index, on).map_err(nl_error)?;
    }
    if let Some(qlen) = conf.txqlen {
        nl.link_set_txqlen(index, qlen).map_err(nl_error)?;
    }
    Ok(())
}

/// Puts back what `b` recorded; every attribute is tried.
pub fn restore(nl: &Handle, link: &Link, b: &Backup) -> Vec<Error> {
    let index = link.index;
    let mut results = Vec::new();
    if let Some(mtu) = b.mtu {
        results.push(nl.link_set_mtu(index, mtu).map_err(nl_error));
    }
    if let Some(mac) = &b.mac {
        let mac = nl::parse_mac(mac)
            .map_err(|_| Error::io(format!("tuning backup holds an invalid MAC address {mac:?}")));
        results.push(mac.and_then(|m| nl.link_set_mac(index, m).map_err(nl_error)));
    }
    if let Some(on) = b.promisc {
        results.push(nl.link_set_promisc(index, on).map_err(nl_error));
    }
    if let Some(on) = b.allmulti {
        results.push(nl.link_set_allmulti(index, on).map_err(nl_error));
    }
    if let Some(qlen) = b.txqlen {
        results.push(nl.link_set_txqlen(index, qlen).map_err(nl_error));
    }
    results.into_iter().filter_map(Result::err).collect()
}

/// CHECK: the link carries what `conf` set. `promisc: false` is not checked: tuning never
/// turns promiscuous mode off.
pub fn check(link: &Link, conf: &TuningConf) -> Result<(), Error> {
    let differs = |what: &str, want: String, have: String| {
        Err(Error::internal(format!("tuning: {} has {what} {have}, configured {want}", link.name)))
    };
    if let Some(mac) = conf.mac
        && link.mac != Some(mac)
    {
        let have = link.mac.map(|m| nl::format_mac(&m)).unwrap_or_default();
        return differs("MAC address", nl::format_mac(&mac), have);
    }
    if conf.promisc && !link.promisc {
        return differs("promiscuous mode", "on".into(), "off".into());
    }
    if let Some(mtu) = conf.mtu
        && link.mtu != mtu
    {
        return differs("MTU", mtu.to_string(), link.mtu.to_string());
    }
    if let Some(on) = conf.allmulti
        && link.allmulti != on
    {
        return differs("all-multicast mode", on.to_string(), link.allmulti.to_string());
    }
    if let Some(qlen) = conf.txqlen
        && link.txqlen != qlen
    {
        return differs("transmit queue length", qlen.to_string(), link.txqlen.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        Link {
            index: 2,
            name: "eth0".into(),
            kind: Some("veth".into()),
            mac: Some([2, 0, 0, 0, 0, 1]),
            mtu: 1500,
            up: true,
            master: None,
            link: Some(7),
            link_netnsid: Some(0),
            promisc: false,
            txqlen: 1000,
            allmulti: false,
            alias: None,
        }
    }

    #[test]
    fn backup_records_only_what_changes() {
        let conf = TuningConf { mtu: Some(1400), allmulti: Some(true), ..Default::default() };
        let b = plan_backup(&conf, &link());
        assert_eq!(b, Backup { mtu: Some(1500), allmulti: Some(false), ..Default::default() });
        let conf = TuningConf {
            mac: Some([2, 0, 0, 0, 0, 9]),
            promisc: true,
            txqlen: Some(5),
            ..Default::default()
        };
        let b = plan_backup(&conf, &link());
        assert_eq!(
            (b.mac.as_deref(), b.promisc, b.txqlen, b.mtu),
            (Some("02:00:00:00:00:01"), Some(false), Some(1000), None)
        );
        assert_eq!(plan_backup(&TuningConf::default(), &link()), Backup::default());
    }

    #[test]
    fn check_names_the_difference() {
        assert!(check(&link(), &TuningConf { mtu: Some(1500), ..Default::default() }).is_ok());
        let err = check(&link(), &TuningConf { mtu: Some(1400), ..Default::default() }).unwrap_err();
        assert_eq!(err.msg, "tuning: eth0 has MTU 1500, configured 1400");
        let err =
            check(&link(), &TuningConf { mac: Some([2, 0, 0, 0, 0, 2]), ..Default::default() }).unwrap_err();
        assert!(err.msg.contains("MAC address 02:00:00:00:00:01, configured 02:00:00:00:00:02"), "{err}");
    }
}
