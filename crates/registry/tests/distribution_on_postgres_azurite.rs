//! `distribution.rs` on PostgreSQL with blobs in Azure Blob (Azurite): the same tests, the store from `support::storage_section`
//! (told by this crate's name).

#[path = "distribution.rs"]
mod suite;
