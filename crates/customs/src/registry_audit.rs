//! `customs registry audit`: verify the hash chain (against signed checkpoints), query and export records, make
//! the checkpoint key and sign a checkpoint by hand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use customs_registry::RegistryConfig;
use customs_registry::audit::{Anchor, AuditError, AuditLog, AuditQuery, AuditRecord, AuditStore, VerifySummary};
use customs_registry::checkpoint::{self, Checkpointer, SigningKey};
use customs_registry::meta::MetaStore;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the hash chain of every record, and that it holds every signed checkpoint and expected head given;
    /// exits 1 at the first disagreement.
    Verify {
        /// A signed checkpoint, or a folder of them (`*.note`), kept where the registry cannot rewrite them.
        #[arg(long, value_name = "FILE|DIR")]
        checkpoint: Vec<PathBuf>,
        /// The checkpoint verifier key (a `.pub` file from `audit keygen`, or its text); required with --checkpoint.
        #[arg(long, value_name = "FILE|KEY")]
        key: Option<String>,
        /// A head hash written down earlier (an earlier `verify`'s output): the chain must still hold it.
        #[arg(long, value_name = "HASH")]
        expect_head: Vec<String>,
        /// Check the segments exported to `[audit] export` instead of the chain in the registry database.
        #[arg(long, conflicts_with = "dir")]
        exported: bool,
        /// Check the segments in this folder (a directory log, or a copy of the export) instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print matching records: a table on a terminal, JSON lines otherwise or with `--format json`.
    Query {
        /// `table` or `json` (JSON lines) [default: table on a terminal, else json].
        #[arg(long, value_parser = ["table", "json"])]
        format: Option<String>,
        /// Only this principal.
        #[arg(long)]
        principal: Option<String>,
        /// Only records at or after this RFC 3339 time or date (2026-11-01).
        #[arg(long)]
        since: Option<String>,
        /// Only this action (pull, push, login, token, ...).
        #[arg(long)]
        action: Option<String>,
        /// Only this result: allowed, denied or error.
        #[arg(long)]
        result: Option<String>,
        /// Only this repository.
        #[arg(long)]
        repository: Option<String>,
    },
    /// Print every record as JSON lines (for a SIEM).
    Export,
    /// Make an Ed25519 checkpoint signing key: FILE (mode 0600) and FILE.pub, the verifier key to give whoever
    /// checks the log. Keep FILE outside the registry's data folder.
    Keygen {
        /// The key's name, shown in every signature (e.g. registry.example.com-audit).
        #[arg(long)]
        name: String,
        /// Where to write the private key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign the current head now with `[audit.checkpoints] key`, store and export it like the server does.
    Checkpoint,
}

/// Which form of the chain a command reads.
enum Chain {
    /// Segments in a folder.
    Directory(PathBuf),
    /// Records in the registry database.
    Database,
    /// Segments exported to this URL.
    Exported(String),
}

impl Chain {
    fn configured(config: &RegistryConfig) -> Result<Chain> {
        Ok(match config.audit_store().map_err(anyhow::Error::msg)? {
            AuditStore::Directory => Chain::Directory(config.audit.dir.clone()),
            AuditStore::Database => Chain::Database,
        })
    }

    fn verify(&self, config: &RegistryConfig, anchors: &[Anchor]) -> Result<(Result<VerifySummary, AuditError>, String)> {
        Ok(match self {
            Chain::Directory(dir) => {
                let summary = customs_registry::audit::verify_anchored(dir, anchors);
                let place = summary.as_ref().map(|s| format!("in {} segments", s.segments)).unwrap_or_default();
                (summary, place)
            }
            Chain::Database => crate::registry::runtime()?.block_on(async {
                let meta = MetaStore::from_config(&config.database).await.map_err(anyhow::Error::msg)?;
                let summary = customs_registry::audit::verify_database(&meta, anchors).await;
                Ok::<_, anyhow::Error>((summary, "in the registry database".to_string()))
            })?,
            Chain::Exported(url) => crate::registry::runtime()?.block_on(async {
                let summary = customs_registry::audit::verify_exported(url, anchors).await;
                let place = summary
                    .as_ref()
                    .map(|s| format!("in {} segments at {url}", s.segments))
                    .unwrap_or_default();
                (summary, place)
            }),
        })
    }
}

/// Calls `f` with every record of the configured store matching `query`, oldest first.
fn query(config: &RegistryConfig, query: &AuditQuery, f: impl FnMut(&AuditRecord)) -> Result<()> {
    match config.audit_store().map_err(anyhow::Error::msg)? {
        AuditStore::Directory => Ok(customs_registry::audit::query(&config.audit.dir, query, f)?),
        AuditStore::Database => crate::registry::runtime()?.block_on(async {
            let meta = MetaStore::from_config(&config.database).await.map_err(anyhow::Error::msg)?;
            Ok(customs_registry::audit::query_database(&meta, query, f).await?)
        }),
    }
}

pub(crate) fn audit(config: &RegistryConfig, command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            checkpoint,
            key,
            expect_head,
            exported,
            dir,
        } => {
            let chain = match (dir, exported) {
                (Some(dir), _) => Chain::Directory(dir),
                (None, true) => match &config.audit.export {
                    Some(url) => Chain::Exported(url.clone()),
                    None => bail!("--exported: no [audit] export is configured"),
                },
                (None, false) => Chain::configured(config)?,
            };
            verify(config, &chain, &checkpoint, key.as_deref(), &expect_head)
        }
        AuditCommand::Query {
            format,
            principal,
            since,
            action,
            result,
            repository,
        } => {
            let since = since.map(|s| crate::registry::parse_since(&s)).transpose()?;
            let query = AuditQuery {
                principal,
                since,
                action,
                result,
                repository,
            };
            use std::io::IsTerminal;
            let table = match format.as_deref() {
                Some("table") => true,
                Some(_) => false,
                None => std::io::stdout().is_terminal(),
            };
            if table {
                print_table(config, &query)
            } else {
                print_records(config, &query)
            }
        }
        AuditCommand::Export => print_records(config, &AuditQuery::default()),
        AuditCommand::Keygen { name, out } => keygen(&name, &out),
        AuditCommand::Checkpoint => sign_now(config),
    }
}

fn verify(config: &RegistryConfig, chain: &Chain, checkpoints: &[PathBuf], key: Option<&str>, expect: &[String]) -> Result<ExitCode> {
    let mut anchors = Vec::new();
    let mut newest: Option<checkpoint::Checkpoint> = None;
    if !checkpoints.is_empty() {
        let Some(key) = key else {
            bail!("--checkpoint needs --key: the verifier key (.pub from `customs registry audit keygen`), held apart from the registry");
        };
        let key = checkpoint::load_verifier_key(key).map_err(anyhow::Error::msg)?;
        let origin = checkpoint::origin(&config.server.service);
        for path in checkpoints {
            match checkpoint::anchors(path, &key, &origin) {
                Ok(found) => {
                    for (anchor, c) in found {
                        if newest.as_ref().is_none_or(|n| c.seq > n.seq) {
                            newest = Some(c);
                        }
                        anchors.push(anchor);
                    }
                }
                Err(e) => {
                    println!("audit log NOT VERIFIED: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    }
    for hash in expect {
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("--expect-head {hash}: expected the 64 hex digits `audit verify` printed as the head");
        }
        anchors.push(Anchor {
            seq: None,
            hash,
            source: "--expect-head".into(),
        });
    }
    let (summary, place) = chain.verify(config, &anchors)?;
    match summary {
        Ok(summary) => {
            let mut line = format!("audit log intact: {} records {place}; head {}", summary.records, summary.head);
            if let Some(c) = &newest {
                line.push_str(&format!(
                    "; agrees with {} signed checkpoints (newest: record {} signed {})",
                    summary.anchored.len() - expect.len(),
                    c.seq,
                    c.time
                ));
            }
            if !expect.is_empty() {
                line.push_str(&format!("; holds the {} expected heads", expect.len()));
            }
            if anchors.is_empty() {
                line.push_str(" (record it elsewhere, or sign checkpoints, to detect rewriting and truncation later)");
            }
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("audit log BROKEN: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn keygen(name: &str, out: &Path) -> Result<ExitCode> {
    let key = SigningKey::generate(name).map_err(anyhow::Error::msg)?;
    let public = out.with_extension(match out.extension() {
        Some(ext) => format!("{}.pub", ext.to_string_lossy()),
        None => "pub".into(),
    });
    customs_registry::keyfile::create_private(out, format!("{}\n", key.encode()).as_bytes())
        .with_context(|| format!("{}: not written (an existing key is never overwritten)", out.display()))?;
    let verifier = key.verifier().encode();
    customs_registry::keyfile::create_public(&public, format!("{verifier}\n").as_bytes()).with_context(|| public.display().to_string())?;
    println!("{verifier}");
    eprintln!(
        "private key {} (mode 0600): set [audit.checkpoints] key to it, outside the registry's data folder\n\
         verifier key {}: give it to whoever runs `customs registry audit verify --checkpoint ... --key ...`",
        out.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn sign_now(config: &RegistryConfig) -> Result<ExitCode> {
    let Some(settings) = &config.audit.checkpoints else {
        bail!("no [audit.checkpoints] section: add key = \"...\" (from `customs registry audit keygen`)");
    };
    let checkpointer = Checkpointer::new(settings, &config.audit.dir, &config.server.service).map_err(anyhow::Error::msg)?;
    let log = AuditLog::from_config(config)?;
    let (seq, head) = log.head()?;
    if seq == 0 {
        bail!("the audit log is empty: nothing to checkpoint");
    }
    let written = crate::registry::runtime()?
        .block_on(checkpointer.write(seq, &head))
        .map_err(anyhow::Error::msg)?;
    print!("{}", written.note);
    eprintln!(
        "checkpoint of record {seq} written to {}{}",
        written.path.display(),
        written.exported.map(|e| format!(" and {e}")).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_records(config: &RegistryConfig, records: &AuditQuery) -> Result<ExitCode> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = None;
    query(config, records, |record| {
        if failed.is_none()
            && let Err(e) = serde_json::to_writer(&mut out, record)
                .map_err(std::io::Error::from)
                .and_then(|_| out.write_all(b"\n"))
        {
            failed = Some(e);
        }
    })?;
    out.flush()?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok(ExitCode::SUCCESS)
}

/// Records for people: one line each, newest last, the fields an investigation starts from.
fn print_table(config: &RegistryConfig, records: &AuditQuery) -> Result<ExitCode> {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING)
        .force_no_tty()
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    t.set_header([
        "SEQ",
        "TIME",
        "PRINCIPAL",
        "CLIENT",
        "ACTION",
        "REPOSITORY",
        "REFERENCE",
        "RESULT",
        "STATUS",
        "DETAIL",
    ]);
    let mut n = 0usize;
    query(config, records, |r| {
        n += 1;
        let e = &r.event;
        t.add_row(vec![
            r.seq.to_string(),
            r.time.clone(),
            e.principal.clone(),
            e.client_ip.clone(),
            e.action.clone(),
            e.repository.clone(),
            e.reference.chars().take(19).collect(),
            e.result.clone(),
            e.status.to_string(),
            e.detail.chars().take(60).collect(),
        ]);
    })?;
    let mut text: String = t.lines().map(|l| l.trim_end().to_string() + "\n").collect();
    text.push_str(&format!("{n} records\n"));
    crate::output::emit(&text, None)?;
    Ok(ExitCode::SUCCESS)
}
