//! The audit chain in the registry database: writers in several processes (two logs with their own writer
//! threads and pools stand for two replicas) append to one chain with no fork and no gap; an edited or cut
//! record is found; the chain's export to object storage is segments that verify on their own and as a folder,
//! written once even when two replicas export at the same time. The `_on_postgres` twin runs the same on
//! PostgreSQL.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use customs_registry::audit::{self, AuditEvent, AuditLog, DatabaseLog, Exporter};
use customs_registry::config::DatabaseConfig;
use customs_registry::meta::MetaStore;

/// A database of the engine this binary tests: a SQLite file, or a PostgreSQL database of the test's own.
struct Database {
    config: DatabaseConfig,
    _dir: tempfile::TempDir,
    _postgres: Option<support::TestDatabase>,
}

fn database() -> Database {
    let dir = tempfile::tempdir().unwrap();
    let postgres = support::on_postgres().then(support::TestDatabase::create);
    let config = DatabaseConfig {
        path: dir.path().join("registry.db"),
        url: postgres.as_ref().map(|db| db.url.clone()),
        ..DatabaseConfig::default()
    };
    Database {
        config,
        _dir: dir,
        _postgres: postgres,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

fn event(principal: &str, i: usize) -> AuditEvent {
    AuditEvent {
        client_ip: "10.0.0.1".into(),
        principal: principal.into(),
        action: "push".into(),
        repository: "team/app".into(),
        reference: format!("v{i}"),
        result: "allowed".into(),
        status: 201,
        ..AuditEvent::default()
    }
}

#[test]
fn writers_in_two_processes_append_to_one_chain_with_no_fork_and_no_gap() {
    let db = database();
    let replicas = [
        Arc::new(AuditLog::Database(DatabaseLog::open(&db.config).unwrap())),
        Arc::new(AuditLog::Database(DatabaseLog::open(&db.config).unwrap())),
    ];
    const THREADS: usize = 6;
    const EACH: usize = 40;
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = replicas[t % 2].clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    log.append(event(&format!("writer-{t}"), i)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let total = (THREADS * EACH) as u64;
    for log in &replicas {
        assert_eq!(log.head().unwrap().0, total, "each replica reads the head of the one chain");
    }
    let rt = runtime();
    rt.block_on(async {
        let meta = MetaStore::from_config(&db.config).await.unwrap();
        let summary = audit::verify_database(&meta, &[]).await.unwrap();
        assert_eq!(summary.records, total);
        assert_eq!(summary.head, replicas[0].head().unwrap().1);
        let mut seen = BTreeSet::new();
        let mut seqs = Vec::new();
        audit::query_database(&meta, &Default::default(), |r| {
            seqs.push(r.seq);
            assert!(seen.insert((r.event.principal.clone(), r.event.reference.clone())), "{r:?} twice");
        })
        .await
        .unwrap();
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    });
}

/// Runs `sql` on the test database (to play the attacker with database access).
async fn tamper(meta_config: &DatabaseConfig, sql: &str) {
    sqlx::any::install_default_drivers();
    let url = match &meta_config.url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", meta_config.path.display()),
    };
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await.unwrap();
}

#[test]
fn an_edited_record_and_records_cut_from_the_end_are_found() {
    let db = database();
    let log = AuditLog::Database(DatabaseLog::open(&db.config).unwrap());
    for i in 0..5 {
        log.append(event("sp1", i)).unwrap();
    }
    let rt = runtime();
    rt.block_on(async {
        let meta = MetaStore::from_config(&db.config).await.unwrap();
        assert_eq!(audit::verify_database(&meta, &[]).await.unwrap().records, 5);

        tamper(
            &db.config,
            "UPDATE audit_records SET record = REPLACE(record, '\"v2\"', '\"v9\"') WHERE seq = 3",
        )
        .await;
        let err = audit::verify_database(&meta, &[]).await.unwrap_err().to_string();
        assert!(err.contains("record 3") && err.contains("modified"), "{err}");
        tamper(
            &db.config,
            "UPDATE audit_records SET record = REPLACE(record, '\"v9\"', '\"v2\"') WHERE seq = 3",
        )
        .await;
        audit::verify_database(&meta, &[]).await.unwrap();

        tamper(&db.config, "DELETE FROM audit_records WHERE seq >= 4").await;
        let err = audit::verify_database(&meta, &[]).await.unwrap_err().to_string();
        assert!(err.contains("head names record 5") && err.contains("removed"), "{err}");
    });
}

#[test]
fn the_export_is_segments_that_verify_alone_and_two_exporters_never_overlap() {
    let db = database();
    let out = tempfile::tempdir().unwrap();
    let url = format!("file://{}", out.path().display());
    let log = AuditLog::Database(DatabaseLog::open(&db.config).unwrap());
    let rt = runtime();
    rt.block_on(async {
        let meta = MetaStore::from_config(&db.config).await.unwrap();
        let (a, b) = (Exporter::new(&url).unwrap(), Exporter::new(&url).unwrap());
        assert_eq!(a.export_next(&meta).await.unwrap(), None, "nothing to export yet");
        let mut exported = Vec::new();
        for round in 0..4 {
            for i in 0..25 {
                log.append(event(&format!("round-{round}"), i)).unwrap();
            }
            // Two replicas export at once: one segment is written, the other finds it taken.
            let (x, y) = tokio::join!(a.export_next(&meta), b.export_next(&meta));
            let written: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
            assert_eq!(written.len(), 1, "round {round}: {written:?}");
            exported.extend(written);
        }
        assert_eq!(
            exported.iter().map(|s| (s.first, s.last)).collect::<Vec<_>>(),
            [(1, 25), (26, 50), (51, 75), (76, 100)]
        );
        assert_eq!(a.export_next(&meta).await.unwrap(), None);

        let summary = audit::verify_exported(&url, &[]).await.unwrap();
        assert_eq!((summary.records, summary.segments), (100, 4));
        assert_eq!(summary.head, audit::verify_database(&meta, &[]).await.unwrap().head);
        // A copy of the export is a directory log.
        assert_eq!(audit::verify(out.path()).unwrap().records, 100);

        let second = out.path().join("audit-000000000026.jsonl");
        let text = std::fs::read_to_string(&second).unwrap();
        std::fs::write(&second, text.replacen("round-1", "round-X", 1)).unwrap();
        let err = audit::verify_exported(&url, &[]).await.unwrap_err().to_string();
        assert!(err.contains("audit-000000000026.jsonl") && err.contains("record 26"), "{err}");
    });
}

#[test]
fn the_store_follows_the_database_unless_set() {
    use customs_registry::audit::AuditStore;
    let store = |text: &str| {
        let config: customs_registry::RegistryConfig = toml::from_str(text).unwrap();
        config.audit_store()
    };
    assert_eq!(store(""), Ok(AuditStore::Directory));
    assert_eq!(store("[database]\nurl = \"postgres://db/registry\"\n"), Ok(AuditStore::Database));
    assert_eq!(
        store("[database]\nurl = \"postgres://db/registry\"\n[audit]\nstore = \"directory\"\n"),
        Ok(AuditStore::Directory)
    );
    assert_eq!(store("[audit]\nstore = \"database\"\n"), Ok(AuditStore::Database));
    let err = store("[audit]\nstore = \"s3\"\n").unwrap_err();
    assert!(err.contains("expected \"directory\" or \"database\""), "{err}");
    let err = store("[audit]\nexport = \"s3://bucket/audit\"\n").unwrap_err();
    assert!(err.contains("store = \"database\""), "{err}");
}
