//! `audit_chain.rs` on PostgreSQL: the same tests, in a database of their own on the server
//! `CUSTOMS_TEST_POSTGRES` names (support::on_postgres tells by this crate's name).

#[path = "audit_chain.rs"]
mod suite;
