//! What the BGP backend reads from the kernel: the routes BIRD put there (protocol `bird`,
//! metric [`ROUTE_METRIC`]) and the networks of the underlay interface.

use ipnet::IpNet;
use nl::route::TABLE_MAIN;
use nl::{Handle, Route};

use super::plan::ROUTE_METRIC;

/// `RTPROT_BIRD`: the protocol BIRD stamps on every route it installs.
pub const PROTO_BIRD: u8 = 12;

/// True for a route twill's BIRD installed.
pub fn is_twill_bgp_route(r: &Route) -> bool {
    r.protocol == Some(PROTO_BIRD)
        && r.metric == Some(ROUTE_METRIC)
        && r.table.is_none_or(|t| t == TABLE_MAIN)
}

/// The routes twill's BIRD installed in the main table (`ip route show proto bird metric 116`,
/// both families).
pub fn bgp_routes(h: &Handle) -> Result<Vec<Route>, nl::Error> {
    Ok(h.route_list(None, Some(TABLE_MAIN))?.into_iter().filter(is_twill_bgp_route).collect())
}

/// `iface`'s global addresses with their prefix lengths: neighbours inside their networks
/// are on a shared segment.
pub fn addresses(h: &Handle, iface: &str) -> Result<Vec<IpNet>, nl::Error> {
    let Some(link) = h.link_get(iface)? else { return Ok(Vec::new()) };
    Ok(h.addr_list(Some(link.index))?.into_iter().filter(|a| a.scope == 0).map(|a| a.net).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_birds_routes_with_twills_metric_are_twills() {
        let mut r = Route {
            dst: "10.244.2.0/24".parse().unwrap(),
            protocol: Some(PROTO_BIRD),
            metric: Some(ROUTE_METRIC),
            table: Some(TABLE_MAIN),
            ..Route::default()
        };
        assert!(is_twill_bgp_route(&r));
        r.metric = Some(32);
        assert!(!is_twill_bgp_route(&r), "another BIRD's route");
        r.metric = Some(ROUTE_METRIC);
        r.protocol = Some(116);
        assert!(!is_twill_bgp_route(&r), "host-gw's route");
    }
}
