//! How long each part runs: a full run (about a quarter of an hour on a 2-core machine) or
//! `--quick` (a smoke run of a few minutes), each number overridable on the command line.

use crate::chains::Chain;
use crate::churn::ChurnConf;
use crate::datapath::DatapathConf;
use crate::density::DensityConf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub quick: bool,
    pub iterations: usize,
    pub warmup: usize,
    pub workers: usize,
    pub churn_pods: usize,
    pub churn_rounds: usize,
    pub live_per_worker: usize,
    pub density_pods: usize,
    pub half_window: usize,
    pub datapath_secs: u32,
    pub datapath_rounds: usize,
    pub ping_count: usize,
    pub memory_runs: usize,
    pub attrib_pods: usize,
}

impl Settings {
    pub fn full() -> Settings {
        Settings {
            quick: false,
            iterations: 100,
            warmup: 5,
            workers: 4,
            churn_pods: 150,
            churn_rounds: 3,
            live_per_worker: 4,
            density_pods: 500,
            half_window: 5,
            datapath_secs: 3,
            datapath_rounds: 5,
            ping_count: 200,
            memory_runs: 10,
            attrib_pods: 10,
        }
    }

    pub fn quick() -> Settings {
        Settings {
            quick: true,
            iterations: 20,
            warmup: 2,
            churn_pods: 40,
            churn_rounds: 1,
            density_pods: 60,
            half_window: 3,
            datapath_secs: 1,
            datapath_rounds: 1,
            ping_count: 50,
            memory_runs: 3,
            attrib_pods: 3,
            ..Settings::full()
        }
    }

    pub fn churn(&self) -> ChurnConf {
        ChurnConf {
            workers: self.workers.max(1),
            pods: self.churn_pods,
            rounds: self.churn_rounds.max(1),
            live_per_worker: self.live_per_worker,
            chain: Chain::Kubernetes,
        }
    }

    pub fn density(&self) -> DensityConf {
        DensityConf { pods: self.density_pods, half_window: self.half_window, workers: self.workers.max(1) }
    }

    pub fn datapath(&self) -> DatapathConf {
        DatapathConf {
            secs: self.datapath_secs.max(1),
            rounds: self.datapath_rounds.max(1),
            ping_count: self.ping_count.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_is_smaller_everywhere() {
        let (q, f) = (Settings::quick(), Settings::full());
        assert!(
            q.iterations < f.iterations && q.churn_pods < f.churn_pods && q.density_pods < f.density_pods
        );
        assert_eq!(q.workers, 4);
        assert_eq!(f.density_pods, 500);
    }
}
