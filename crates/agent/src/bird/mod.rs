//! BIRD 2, the BGP speaker twill drives: twill writes no BGP protocol code. This module
//! holds what is about BIRD itself and nothing about the cluster:
//!
//! - [`config`]: the configuration language subset twill writes, as data; [`render`]: as text;
//! - [`control`]: the control socket `birdc` speaks (commands, `configure`);
//! - [`protocols`]: `show protocols all` read into sessions, states and route counts;
//! - [`supervisor`]: BIRD as a child process — started with its own control socket, pid
//!   file and log in a directory of its own, restarted when it dies, stopped by pid.

pub mod config;
pub mod control;
pub mod protocols;
pub mod render;
pub mod supervisor;

pub use config::{BirdConfig, Family};
pub use control::{Control, ControlError, Reply};
pub use protocols::{ProtocolStatus, parse_protocols};
pub use supervisor::{BirdFiles, Supervisor, SupervisorError};
