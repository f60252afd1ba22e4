//! twilld placeholder
pub mod store;
