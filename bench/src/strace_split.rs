//! Splitting one plugin process's time by what it waited for, from its
//! `strace -f -ttt -T -yy` trace: how long the kernel took for each system call (`-T`), and on
//! what (`-yy` names each fd: a NETLINK_ROUTE or NETLINK_NETFILTER socket, a file under the
//! IPAM data dir, a sysctl). Pure: the parser knows nothing about processes.
//!
//! Tracing adds its own cost between system calls, so only the kernel times are used; the
//! untraced totals come from the latency part.

use std::collections::HashMap;
use std::time::Duration;

/// What a plugin process's time went to.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Split {
    /// From exec to the first read of the config on stdin: loader, libc, runtime start.
    pub start: Duration,
    /// System calls on NETLINK_ROUTE sockets: links, addresses, routes, neighbours, tc. A
    /// socket opened in another namespace (the pod's) shows strace no protocol; the plugins
    /// open only rtnetlink sockets there, so such netlink sockets count here too.
    pub rtnetlink: Duration,
    /// System calls on NETLINK_NETFILTER sockets: nf_tables batches and gets, conntrack.
    pub netfilter: Duration,
    /// File system calls under the IPAM data dir, and its lock (host-local).
    pub ipam: Duration,
    /// Reads and writes of /proc/sys (forwarding, route_localnet, accept_ra).
    pub sysctl: Duration,
    /// Entering namespaces and starting the short-lived threads that do it.
    pub netns: Duration,
    /// Every other system call that did work (blocking waits for threads and children left
    /// out: the work they wait for is counted where it happens).
    pub other_syscalls: Duration,
    /// Exec to exit of the plugin process.
    pub total: Duration,
}

/// One finished system call of the trace.
#[derive(Debug, PartialEq)]
struct Call {
    pid: u32,
    at: f64,
    name: String,
    /// The call's line (both halves when strace split it), for fd annotations.
    text: String,
    took: f64,
}

/// Waits that only stand for work done elsewhere (threads, children, the parent's pipe).
const WAITS: [&str; 7] = ["futex", "wait4", "waitid", "poll", "ppoll", "epoll_wait", "nanosleep"];

fn parse_line(line: &str, pending: &mut HashMap<u32, String>) -> Option<Call> {
    // strace pads the pid column (`6414  1796633011.213619 execve(...`): fields are split on
    // runs of spaces, not on one.
    let (pid, rest) = line.trim_start().split_once(' ')?;
    let pid: u32 = pid.parse().ok()?;
    let (at, body) = rest.trim_start().split_once(' ')?;
    let (at, body) = (at.parse::<f64>().ok()?, body.trim_start());
    if body.ends_with("<unfinished ...>") {
        pending.insert(pid, body.to_string());
        return None;
    }
    let (name, text) = match body.strip_prefix("<... ") {
        Some(resumed) => {
            let name = resumed.split(' ').next()?.to_string();
            (name, format!("{} {body}", pending.remove(&pid).unwrap_or_default()))
        }
        None => (body.split('(').next()?.to_string(), body.to_string()),
    };
    let took =
        body.rsplit_once('<').and_then(|(_, t)| t.strip_suffix('>')?.parse::<f64>().ok()).unwrap_or(0.0);
    Some(Call { pid, at, name, text, took })
}

/// The split of one traced plugin process (`main` is its pid, the first in the trace).
pub fn split(trace: &str, ipam_dir: &str) -> Split {
    let mut pending = HashMap::new();
    let calls: Vec<Call> = trace.lines().filter_map(|l| parse_line(l, &mut pending)).collect();
    let mut s = Split::default();
    let Some(first) = calls.first() else { return s };
    let (main, exec_at) = (first.pid, first.at);
    let last = calls.iter().map(|c| c.at + c.took).fold(exec_at, f64::max);
    s.total = Duration::from_secs_f64((last - exec_at).max(0.0));
    let stdin_read =
        calls.iter().find(|c| c.pid == main && c.name == "read" && c.text.contains("read(0<pipe"));
    s.start = Duration::from_secs_f64(stdin_read.map_or(0.0, |c| c.at - exec_at).max(0.0));
    for c in calls.iter().filter(|c| stdin_read.is_none_or(|r| c.at >= r.at)) {
        let took = Duration::from_secs_f64(c.took);
        let slot = match () {
            _ if WAITS.contains(&c.name.as_str()) => continue,
            _ if c.text.contains("NETLINK:[NETFILTER") => &mut s.netfilter,
            _ if c.text.contains("NETLINK:[") => &mut s.rtnetlink,
            _ if !ipam_dir.is_empty() && c.text.contains(ipam_dir) => &mut s.ipam,
            _ if c.text.contains("/proc/sys/") => &mut s.sysctl,
            _ if matches!(c.name.as_str(), "setns" | "clone3" | "clone" | "exit") => &mut s.netns,
            _ => &mut s.other_syscalls,
        };
        *slot += took;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "\
100 1.000000 execve(\"/bin/bridge\", [\"/bin/bridge\"], 0x1 /* 3 vars */) = 0 <0.000200>
100 1.002000 read(0<pipe:[1]>, \"{}\", 32) = 2 <0.000010>
100 1.002100 socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE) = 4<NETLINK:[ROUTE:100]> <0.000010>
100 1.002200 sendto(4<NETLINK:[ROUTE:100]>, [...], 60, 0, NULL, 0 <unfinished ...>
101 1.002240 sendto(5<NETLINK:[4026]>, [...], 60, 0, NULL, 0) = 60 <0.000020>
101 1.002250 setns(3<net:[4026]>, CLONE_NEWNET) = 0 <0.000050>
100 1.003200 <... sendto resumed>) = 60 <0.001000>
100 1.003300 futex(0x7f, FUTEX_WAIT, 5, NULL) = 0 <0.000400>
100 1.004000 fsync(7</tmp/x/ipam/net/10.0.0.2>) = 0 <0.000500>
100 1.004600 sendto(6<NETLINK:[NETFILTER:100]>, [...], 200, 0, NULL, 0) = 200 <0.000100>
100 1.004800 openat(AT_FDCWD, \"/proc/sys/net/ipv4/ip_forward\", O_WRONLY) = 8</proc/sys/net/ipv4/ip_forward> <0.000020>
100 1.005000 write(1<pipe:[2]>, \"{}\", 2) = 2 <0.000005>
100 1.006000 exit_group(0) = ?
";

    #[test]
    fn calls_go_to_their_category() {
        let s = split(TRACE, "/tmp/x/ipam");
        let us = |d: Duration| d.as_micros();
        assert_eq!(us(s.total), 6000);
        assert_eq!(us(s.start), 2000);
        assert_eq!(us(s.rtnetlink), 1030);
        assert_eq!(us(s.netfilter), 100);
        assert_eq!(us(s.ipam), 500);
        assert_eq!(us(s.sysctl), 20);
        assert_eq!(us(s.netns), 50);
        // The stdin read and the stdout write; the futex wait is left out.
        assert_eq!(us(s.other_syscalls), 15);
    }

    #[test]
    fn a_padded_pid_column_parses() {
        let mut pending = HashMap::new();
        let line = "6414  1796633011.213619 execve(\"/bin/true\", [\"/bin/true\"], 0x7ffe /* 35 vars */) = 0 <0.000177>";
        let call = parse_line(line, &mut pending).expect("a padded line is a call");
        assert_eq!((call.pid, call.name.as_str()), (6414, "execve"));
        assert!((call.took - 0.000177).abs() < 1e-9);
        let wide = line.replacen("6414  ", "16414 ", 1);
        assert_eq!(parse_line(&wide, &mut pending).map(|c| c.pid), Some(16414));
    }

    #[test]
    fn an_empty_trace_is_all_zero() {
        assert_eq!(split("", "/x"), Split::default());
    }
}
