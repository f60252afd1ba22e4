//! `twill lab matrix`: the all-pairs reachability table of the lab's pods, as the Kubernetes
//! network policy e2e tests print it (`.` connected, `X` not). Probes run in parallel threads,
//! so a table of blocked pairs costs about one probe timeout, not one per pair.

use std::net::SocketAddr;

use anyhow::{Result, bail};
use netns::NetNs;
use serde_json::{Value, json};

use super::names::PodRef;
use super::probe::{self, Verdict};
use super::state::LabState;
use super::wire::Protocol;

/// Probes running at once: a 9×9 table (the Kubernetes e2e policy world) in one round.
const PARALLEL: usize = 128;

/// One cell of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Connected,
    /// Not connected (refused, unanswered, or answered by the wrong server).
    Blocked(String),
    /// The probe could not be made.
    Error(String),
}

impl Cell {
    fn mark(&self) -> &'static str {
        match self {
            Cell::Connected => ".",
            Cell::Blocked(_) => "X",
            Cell::Error(_) => "?",
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Cell::Connected => json!({"result": "connected"}),
            Cell::Blocked(why) => json!({"result": "blocked", "detail": why}),
            Cell::Error(e) => json!({"result": "error", "detail": e}),
        }
    }
}

/// Rows are sources, columns destinations, both in `pods` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pub label: String,
    pub pods: Vec<PodRef>,
    pub cells: Vec<Vec<Cell>>,
}

impl Matrix {
    pub fn connected(&self) -> usize {
        self.cells.iter().flatten().filter(|c| **c == Cell::Connected).count()
    }

    pub fn total(&self) -> usize {
        self.pods.len() * self.pods.len()
    }
}

/// Probes every ordered pair of pods (a pod to itself included).
pub fn measure(state: &LabState, port: u16, proto: Protocol, v6: bool) -> Result<Matrix> {
    let pods: Vec<PodRef> = state.pods.values().map(|p| p.pod_ref()).collect();
    if pods.is_empty() {
        bail!("the lab has no pods (add some with `twill lab pod add NS/NAME`)");
    }
    let mut targets = Vec::new();
    for pod in state.pods.values() {
        let ip = pod.ip(v6).ok_or_else(|| {
            anyhow::anyhow!("pod {} has no IPv{} address", pod.pod_ref(), if v6 { 6 } else { 4 })
        })?;
        targets.push(SocketAddr::new(ip, port));
    }
    let sources: Vec<NetNs> =
        state.pods.values().map(|p| NetNs::open(netns::named_path(&p.netns))).collect::<Result<_, _>>()?;
    let pairs: Vec<(usize, usize)> =
        (0..pods.len()).flat_map(|i| (0..pods.len()).map(move |j| (i, j))).collect();
    let mut flat = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(PARALLEL) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&(i, j)| {
                    let (from, to, want) = (&sources[i], targets[j], pods[j].to_string());
                    s.spawn(move || cell(probe::probe(from, to, proto), &want))
                })
                .collect();
            for h in handles {
                flat.push(h.join().unwrap_or_else(|_| Cell::Error("probe thread panicked".into())));
            }
        });
    }
    let cells = flat.chunks(pods.len()).map(<[Cell]>::to_vec).collect();
    Ok(Matrix { label: format!("{proto}/{port}{}", if v6 { " (IPv6)" } else { "" }), pods, cells })
}

fn cell(outcome: Result<Verdict>, want: &str) -> Cell {
    match outcome {
        Ok(Verdict::Connected(r)) if r.who == want => Cell::Connected,
        Ok(Verdict::Connected(r)) => Cell::Blocked(format!("answered by {} instead", r.who)),
        Ok(Verdict::Failed(why)) => Cell::Blocked(why),
        Err(e) => Cell::Error(format!("{e:#}")),
    }
}

/// The table, then a summary line (`N/M connected`) and the distinct probe errors.
pub fn render(m: &Matrix) -> String {
    let names: Vec<String> = m.pods.iter().map(PodRef::to_string).collect();
    let width = names.iter().map(String::len).max().unwrap_or(0).max(m.label.len()) + 2;
    let mut out =
        format!("reachability {} (rows: from, columns: to; . connected, X not, ? no probe)\n", m.label);
    let row = |head: &str, cells: Vec<&str>| {
        let line: String = std::iter::once(head).chain(cells).map(|c| format!("{c:width$}")).collect();
        format!("{}\n", line.trim_end())
    };
    out.push_str(&row("", names.iter().map(String::as_str).collect()));
    for (n, cells) in names.iter().zip(&m.cells) {
        out.push_str(&row(n, cells.iter().map(Cell::mark).collect()));
    }
    out.push_str(&format!("{}/{} connected\n", m.connected(), m.total()));
    let mut errors: Vec<&String> = m
        .cells
        .iter()
        .flatten()
        .filter_map(|c| if let Cell::Error(e) = c { Some(e) } else { None })
        .collect();
    errors.sort();
    errors.dedup();
    for e in errors {
        out.push_str(&format!("error: {e}\n"));
    }
    out
}

/// The table for scripts: `marks` holds one string per source row (`.`, `X`, `?` per
/// destination, in `pods` order), `cells` the same with the reason of each failure.
pub fn to_json(m: &Matrix) -> Value {
    let marks: Vec<String> = m.cells.iter().map(|row| row.iter().map(Cell::mark).collect()).collect();
    let cells: Vec<Vec<Value>> = m.cells.iter().map(|row| row.iter().map(Cell::to_json).collect()).collect();
    json!({
        "label": m.label,
        "pods": m.pods.iter().map(PodRef::to_string).collect::<Vec<_>>(),
        "marks": marks,
        "cells": cells,
        "connected": m.connected(),
        "total": m.total(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_show_marks_summary_and_errors_once() {
        let pods: Vec<PodRef> = ["a/p1", "b/p2"].iter().map(|s| s.parse().unwrap()).collect();
        let m = Matrix {
            label: "tcp/80".into(),
            pods,
            cells: vec![
                vec![Cell::Connected, Cell::Blocked("refused".into())],
                vec![Cell::Error("no sctp".into()), Cell::Error("no sctp".into())],
            ],
        };
        let text = render(&m);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("reachability tcp/80"));
        assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["a/p1", "b/p2"]);
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["a/p1", ".", "X"]);
        assert_eq!(lines[3].split_whitespace().collect::<Vec<_>>(), ["b/p2", "?", "?"]);
        assert_eq!(lines[4], "1/4 connected");
        assert_eq!(lines[5], "error: no sctp");
        assert_eq!(lines.len(), 6);
        let j = to_json(&m);
        assert_eq!(j["marks"], json!([".X", "??"]));
        assert_eq!(j["pods"], json!(["a/p1", "b/p2"]));
        assert_eq!(j["cells"][0][1], json!({"result": "blocked", "detail": "refused"}));
        assert_eq!((j["connected"].as_u64(), j["total"].as_u64()), (Some(1), Some(4)));
    }

    #[test]
    fn a_reply_from_the_wrong_pod_is_not_a_connection() {
        let reply = |who: &str| {
            Ok(Verdict::Connected(crate::lab::wire::Reply {
                who: who.into(),
                node: None,
                proto: Protocol::Tcp,
                port: 80,
                client: "10.0.0.1:1".parse().unwrap(),
            }))
        };
        assert_eq!(cell(reply("a/p1"), "a/p1"), Cell::Connected);
        assert!(matches!(cell(reply("a/p2"), "a/p1"), Cell::Blocked(_)));
    }
}
