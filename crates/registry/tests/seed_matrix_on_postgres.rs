//! `seed_matrix.rs` on PostgreSQL: the same tests, with the metadata in a database of their own on the server
//! `CUSTOMS_TEST_POSTGRES` names (support::on_postgres tells by this crate's name).

#[path = "seed_matrix.rs"]
mod suite;
