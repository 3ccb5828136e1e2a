//! `replicas_on_postgres.rs` on PostgreSQL with blobs in S3 (moto): the same tests, the store from `support::storage_section`
//! (told by this crate's name).

#[path = "replicas_on_postgres.rs"]
mod suite;
