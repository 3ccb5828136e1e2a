//! The customs registry: an OCI distribution 1.1 server where each project pipeline has its own identity,
//! groups reach several repositories, an authorization matrix grants least privilege, transport is TLS and
//! every action — denied ones included — lands in a hash-chained audit log.
//!
//! Library-first: [`server::Registry::open`] plus [`server::serve`] run it; the `customs registry` commands manage
//! identities, check access and verify the audit log through the same types.

pub mod access;
pub mod alerts;
pub mod anomaly;
pub mod api;
pub mod audit;
pub mod audit_budget;
mod audited;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod digest;
mod distribution;
pub mod error;
pub mod gc;
pub mod identity;
pub mod keyfile;
pub mod lineage;
pub mod lockout;
mod login;
pub mod manifest;
pub mod meta;
pub mod metrics;
pub mod protect;
pub mod rate_limit;
pub mod route;
pub mod scanning;
pub mod second_factor;
pub mod server;
pub mod signatures;
pub mod storage;
pub mod tls;
pub mod token;
mod token_endpoint;
pub mod webhooks;

pub use config::RegistryConfig;
pub use server::{Registry, StartError, router, serve};
