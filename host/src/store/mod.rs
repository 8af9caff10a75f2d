//! The run store: every run's state in one SQLite database (WAL) under the workspace's
//! `.greenlight/`, written one transaction per state change, *before* the change is acted on.
//!
//! It knows runs, steps, attempts, process groups and events as records; what they mean is the
//! engine's business. A file that is not a greenlight store (another application's database,
//! a damaged one, a newer schema) is reported and never written to.
//!
//! Durability: `synchronous = NORMAL` in WAL mode. A committed transaction survives the runner
//! being killed at any point (the kernel holds the written pages); only a power cut can lose the
//! last few, and never leaves the database inconsistent.

mod lock;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, params};

pub use lock::RunnerLock;

/// The store's file, inside `.greenlight/`.
pub const FILE: &str = "runs.db";
/// `PRAGMA application_id` of a greenlight store: "glnt".
const APPLICATION_ID: i32 = 0x676c_6e74;
/// `PRAGMA user_version`: the schema this greenlight writes.
const SCHEMA_VERSION: i32 = 2;
/// How a store of each older schema becomes the current one: `MIGRATIONS[v - 1]` takes v to v+1.
const MIGRATIONS: &[&str] = &["ALTER TABLE runs ADD COLUMN grants TEXT;
     ALTER TABLE runs ADD COLUMN component_sha256 TEXT;
     CREATE TABLE decisions (
         run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, seq INTEGER NOT NULL,
         session INTEGER NOT NULL, step TEXT NOT NULL, directives TEXT NOT NULL, at INTEGER NOT NULL,
         PRIMARY KEY (run_id, seq)) STRICT;"];
const SCHEMA: &str = include_str!("schema.sql");
/// How long a write waits for another runner's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path}: not a greenlight run store ({why}). greenlight has not changed it; move it aside \
         (mv {q} {q}.bak) and the next run creates a new store",
        q = shell_word(.path)
    )]
    Foreign { path: PathBuf, why: String },
    #[error(
        "{path}: the run store is damaged ({detail}). greenlight has not changed it; try \
         `sqlite3 {q} .recover`, or move it aside (mv {q} {q}.broken) to start a new store",
        q = shell_word(.path)
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "{path}: written by a newer greenlight (store schema {found}; this greenlight reads {SCHEMA_VERSION}); \
         upgrade greenlight"
    )]
    Newer { path: PathBuf, found: i32 },
    #[error("no runs recorded in {workspace} yet (no {FILE}); `greenlight run FILE` starts one")]
    Missing { workspace: PathBuf },
    #[error("{path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    NotFound(String),
}

impl StoreError {
    /// A record with that key exists already (a run id taken).
    pub fn is_duplicate(&self) -> bool {
        matches!(self, StoreError::Sqlite { source, .. }
            if source.sqlite_error_code() == Some(ErrorCode::ConstraintViolation))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One open store. Safe to share between tasks; each call is one short transaction.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// A run as it starts.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: String,
    pub name: String,
    pub file: String,
    pub file_path: PathBuf,
    pub selected: Option<String>,
    pub definition: String,
    pub definition_hash: String,
    /// JSON object.
    pub vars: String,
    pub max_concurrency: Option<u32>,
    pub workspace: PathBuf,
    pub run_dir: PathBuf,
    pub started_at: u64,
    pub reused_from: Option<String>,
    /// JSON: the grants of an untrusted run.
    pub grants: Option<String>,
    pub component_sha256: Option<String>,
}

/// A step of a run's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepDefinition {
    pub name: String,
    pub definition_hash: String,
}

/// How a step ended (or what an earlier run left for it to reuse).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepEnded {
    pub status: String,
    pub attempts: u32,
    pub duration_ms: u64,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// What later steps' templates see; `Some` (possibly empty) for a step that succeeded.
    pub output: Option<String>,
    pub log: Option<PathBuf>,
    /// JSON.
    pub usage: Option<String>,
    pub reused_from: Option<String>,
}

/// An attempt as it ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptEnded {
    pub status: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// JSON array of verdicts.
    pub checks: String,
    pub duration_ms: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunEnded {
    pub status: String,
    pub reason: Option<String>,
    pub commit: Option<String>,
    pub blocked_artifact: Option<PathBuf>,
}

/// An event, as the engine serialized it.
#[derive(Debug, Clone, Copy)]
pub struct EventRecord<'a> {
    pub kind: &'a str,
    pub body: &'a str,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRow {
    pub id: String,
    pub name: String,
    pub file: String,
    pub file_path: PathBuf,
    pub selected: Option<String>,
    #[serde(skip)]
    pub definition: String,
    pub definition_hash: String,
    #[serde(skip)]
    pub vars: String,
    pub max_concurrency: Option<u32>,
    pub workspace: PathBuf,
    pub run_dir: PathBuf,
    pub status: String,
    pub reason: Option<String>,
    pub started_at: u64,
    pub finished_at: Option<u64>,
    pub sessions: u32,
    pub runner_pid: Option<u32>,
    pub cancel_requested: bool,
    pub commit: Option<String>,
    pub blocked_artifact: Option<PathBuf>,
    pub reused_from: Option<String>,
    /// JSON: the grants of an untrusted run (`None`: trusted).
    #[serde(skip)]
    pub grants: Option<String>,
    pub component_sha256: Option<String>,
}

/// What `decide` answered after a step ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DecisionRow {
    pub seq: u32,
    pub session: u32,
    pub step: String,
    /// JSON array.
    pub directives: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StepRow {
    pub name: String,
    pub position: u32,
    pub definition_hash: String,
    pub status: String,
    pub attempts: u32,
    pub repairs: u32,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    #[serde(skip)]
    pub output: Option<String>,
    pub log: Option<PathBuf>,
    #[serde(skip)]
    pub usage: Option<String>,
    pub reused_from: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AttemptRow {
    pub step: String,
    pub attempt: u32,
    pub session: u32,
    pub what: String,
    pub log: Option<PathBuf>,
    pub started_at: u64,
    pub finished_at: Option<u64>,
    pub status: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    #[serde(skip)]
    pub checks: Option<String>,
    pub duration_ms: Option<u64>,
}

/// A process group a run started that has not been seen to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRow {
    pub id: i64,
    pub step: String,
    pub what: String,
    pub pgid: i32,
    pub start_ticks: Option<u64>,
}

impl Store {
    /// Open the store of `workspace` (its `.greenlight/runs.db`), creating it when there is none.
    pub fn open_or_create(workspace: &Path) -> Result<Store> {
        let dir = workspace.join(".greenlight");
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        ignore_itself(&dir);
        Store::open_at(&dir.join(FILE), true)
    }

    /// Open the store of `workspace`; [`StoreError::Missing`] when no run was ever recorded.
    pub fn open_existing(workspace: &Path) -> Result<Store> {
        let path = workspace.join(".greenlight").join(FILE);
        if !path.exists() {
            return Err(StoreError::Missing { workspace: workspace.to_path_buf() });
        }
        Store::open_at(&path, false)
    }

    /// Open the store file at `path`. Nothing is written to a file that is not a greenlight store.
    pub fn open_at(path: &Path, create: bool) -> Result<Store> {
        let path = path.to_path_buf();
        check_header(&path)?;
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let mut conn = Connection::open_with_flags(&path, flags).map_err(|e| classify(&path, e))?;
        conn.busy_handler(Some(wait_for_the_other_writer)).map_err(|e| classify(&path, e))?;
        // Every write is one of a few statements: parse each once per connection.
        conn.set_prepared_statement_cache_capacity(64);
        let store = Store { conn: Mutex::new(conn), path };
        store.prepare()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Check the file is ours (or empty, and make it ours), then set the connection up.
    fn prepare(&self) -> Result<()> {
        let mut conn = self.conn.lock().expect("not poisoned");
        let (app, version, tables) = identify(&conn).map_err(|e| classify(&self.path, e))?;
        if app != APPLICATION_ID && (app != 0 || version != 0 || tables != 0) {
            let why = if app != 0 {
                format!("an SQLite database of another application (application_id {app:#x})")
            } else {
                format!("an SQLite database with {tables} tables of its own")
            };
            return Err(StoreError::Foreign { path: self.path.clone(), why });
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::Newer { path: self.path.clone(), found: version });
        }
        enable_wal(&conn).map_err(|e| classify(&self.path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| classify(&self.path, e))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| classify(&self.path, e))?;
        if app == 0 {
            // A new store; another runner may be creating it at this moment, so check again
            // inside the write transaction.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| classify(&self.path, e))?;
            let (app, _, tables) = identify(&tx).map_err(|e| classify(&self.path, e))?;
            if app == 0 && tables == 0 {
                tx.execute_batch(SCHEMA).map_err(|e| classify(&self.path, e))?;
                tx.pragma_update(None, "application_id", APPLICATION_ID)
                    .map_err(|e| classify(&self.path, e))?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(|e| classify(&self.path, e))?;
            } else if app != APPLICATION_ID {
                return Err(StoreError::Foreign {
                    path: self.path.clone(),
                    why: "another program wrote tables of its own into it".into(),
                });
            }
            tx.commit().map_err(|e| classify(&self.path, e))?;
        } else if version < SCHEMA_VERSION {
            // An older greenlight's store: brought up to date in one transaction (checked again
            // inside it: another runner may be migrating it at this moment).
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| classify(&self.path, e))?;
            let (_, version, _) = identify(&tx).map_err(|e| classify(&self.path, e))?;
            for migration in MIGRATIONS.iter().skip((version.max(1) - 1) as usize) {
                tx.execute_batch(migration).map_err(|e| classify(&self.path, e))?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| classify(&self.path, e))?;
            tx.commit().map_err(|e| classify(&self.path, e))?;
        }
        Ok(())
    }

    /// One write transaction.
    fn write<T>(&self, f: impl FnOnce(&Transaction) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().expect("not poisoned");
        let run = || {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        };
        run().map_err(|e| classify(&self.path, e))
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.conn.lock().expect("not poisoned");
        f(&conn).map_err(|e| classify(&self.path, e))
    }

    /// Record a new run and its steps (all pending). Fails if the id is taken.
    pub fn create_run(&self, run: &NewRun, steps: &[StepDefinition], pid: u32) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO runs (id, name, file, file_path, selected, definition, definition_hash, vars,
                     max_concurrency, workspace, run_dir, status, started_at, runner_pid, reused_from, grants,
                     component_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'running', ?12, ?13, ?14, ?15, ?16)",
            )?
            .execute(params![
                run.id,
                run.name,
                run.file,
                path_text(&run.file_path),
                run.selected,
                run.definition,
                run.definition_hash,
                run.vars,
                run.max_concurrency,
                path_text(&run.workspace),
                path_text(&run.run_dir),
                run.started_at as i64,
                pid,
                run.reused_from,
                run.grants,
                run.component_sha256,
            ])?;
            upsert_steps(tx, &run.id, steps)
        })
    }

    /// A resume starts a new session of `run_id`: it is running again, under this process.
    /// With `definition` (text, hash, steps), the run now follows a changed workflow: new steps
    /// are added, changed ones are pending again, and steps no longer in it are marked removed.
    /// Attempts that were running when the previous runner died are marked lost.
    /// Returns the new session number.
    pub fn begin_session(
        &self,
        run_id: &str,
        pid: u32,
        definition: Option<(&str, &str, &[StepDefinition])>,
    ) -> Result<u32> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE runs SET status = 'running', reason = NULL, finished_at = NULL, sessions = sessions + 1,
                     runner_pid = ?2, cancel_requested = 0, commit_sha = NULL, blocked_artifact = NULL
                 WHERE id = ?1")?.execute(params![run_id, pid])?;
            tx.prepare_cached(
                "UPDATE attempts SET status = 'lost', reason = 'the runner stopped while it ran'
                 WHERE run_id = ?1 AND status = 'running'")?.execute(params![run_id])?;
            if let Some((text, hash, steps)) = definition {
                tx.prepare_cached(
                    "UPDATE runs SET definition = ?2, definition_hash = ?3 WHERE id = ?1")?.execute(params![run_id, text, hash])?;
                // Steps the new definition still has get their position back from the upsert
                // (keeping their status when unchanged); those left at -1 were removed.
                tx.prepare_cached("UPDATE steps SET position = -1 WHERE run_id = ?1")?.execute(params![run_id])?;
                upsert_steps(tx, run_id, steps)?;
                tx.prepare_cached(
                    "UPDATE steps SET status = 'removed' WHERE run_id = ?1 AND position < 0")?.execute(params![run_id])?;
            }
            tx.query_row("SELECT sessions FROM runs WHERE id = ?1", params![run_id], |r| r.get(0))
        })
    }

    /// Append an event that changes nothing else.
    pub fn event(&self, run_id: &str, session: u32, event: EventRecord) -> Result<()> {
        self.write(|tx| insert_event(tx, run_id, session, event))
    }

    /// Append events that together make one state change (the steps a resumed session keeps).
    pub fn append_events(&self, run_id: &str, session: u32, events: &[EventRecord]) -> Result<()> {
        self.write(|tx| events.iter().try_for_each(|event| insert_event(tx, run_id, session, *event)))
    }

    /// An attempt is about to start (nothing has been spawned yet).
    #[allow(clippy::too_many_arguments)]
    pub fn attempt_started(
        &self,
        run_id: &str,
        session: u32,
        step: &str,
        attempt: u32,
        what: &str,
        log: Option<&Path>,
        at: u64,
        event: EventRecord,
    ) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO attempts (run_id, step, attempt, session, what, log, started_at, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running')")?.execute(params![run_id, step, attempt, session, what, log.map(path_text), at as i64])?;
            tx.prepare_cached(
                "UPDATE steps SET status = 'running', attempts = max(attempts, ?3),
                     started_at = coalesce(started_at, ?4), finished_at = NULL
                 WHERE run_id = ?1 AND name = ?2")?.execute(params![run_id, step, attempt, at as i64])?;
            insert_event(tx, run_id, session, event)
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn attempt_finished(
        &self,
        run_id: &str,
        session: u32,
        step: &str,
        attempt: u32,
        ended: &AttemptEnded,
        at: u64,
        event: EventRecord,
    ) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE attempts SET status = ?4, exit_code = ?5, reason = ?6, checks = ?7, duration_ms = ?8,
                     finished_at = ?9
                 WHERE run_id = ?1 AND step = ?2 AND attempt = ?3",
            )?
            .execute(params![
                run_id,
                step,
                attempt,
                ended.status,
                ended.exit_code,
                ended.reason,
                ended.checks,
                ended.duration_ms as i64,
                at as i64
            ])?;
            processes_done(tx, run_id, step)?;
            insert_event(tx, run_id, session, event)
        })
    }

    /// A repair round on `step` ended: its process group is done, like an attempt's.
    pub fn repair_finished(&self, run_id: &str, session: u32, step: &str, event: EventRecord) -> Result<()> {
        self.write(|tx| {
            processes_done(tx, run_id, step)?;
            insert_event(tx, run_id, session, event)
        })
    }

    /// A repair round is about to start on `step`.
    pub fn repair_started(
        &self,
        run_id: &str,
        session: u32,
        step: &str,
        round: u32,
        event: EventRecord,
    ) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE steps SET repairs = max(repairs, ?3) WHERE run_id = ?1 AND name = ?2")?
                .execute(params![run_id, step, round])?;
            insert_event(tx, run_id, session, event)
        })
    }

    /// A step ended for good (succeeded, failed, skipped, ...), or was reused from an earlier run.
    pub fn step_ended(
        &self,
        run_id: &str,
        session: u32,
        step: &str,
        ended: &StepEnded,
        at: u64,
        event: Option<EventRecord>,
    ) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE steps SET status = ?3, attempts = max(attempts, ?4), duration_ms = ?5, exit_code = ?6,
                     reason = ?7, output = ?8, log = coalesce(?9, log), usage = ?10, reused_from = ?11,
                     finished_at = ?12
                 WHERE run_id = ?1 AND name = ?2")?.execute(params![
                    run_id,
                    step,
                    ended.status,
                    ended.attempts,
                    ended.duration_ms as i64,
                    ended.exit_code,
                    ended.reason,
                    ended.output,
                    ended.log.as_deref().map(path_text),
                    ended.usage,
                    ended.reused_from,
                    at as i64
                ])?;
            match event {
                Some(event) => insert_event(tx, run_id, session, event),
                None => Ok(()),
            }
        })
    }

    pub fn run_finished(
        &self,
        run_id: &str,
        session: u32,
        ended: &RunEnded,
        at: u64,
        event: EventRecord,
    ) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE runs SET status = ?2, reason = ?3, commit_sha = ?4, blocked_artifact = ?5, finished_at = ?6
                 WHERE id = ?1")?.execute(params![
                    run_id,
                    ended.status,
                    ended.reason,
                    ended.commit,
                    ended.blocked_artifact.as_deref().map(path_text),
                    at as i64
                ])?;
            insert_event(tx, run_id, session, event)
        })
    }

    /// A run whose runner is gone ends with `status` (a `cancel` of a dead runner, say): its
    /// running steps and attempts are marked the same way.
    pub fn close_abandoned(&self, run_id: &str, status: &str, reason: &str, at: u64) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "UPDATE runs SET status = ?2, reason = ?3, finished_at = ?4 WHERE id = ?1")?.execute(params![run_id, status, reason, at as i64])?;
            tx.prepare_cached(
                "UPDATE attempts SET status = 'lost', reason = 'the runner stopped while it ran'
                 WHERE run_id = ?1 AND status = 'running'")?.execute(params![run_id])?;
            tx.prepare_cached(
                "UPDATE steps SET status = ?2, reason = ?3 WHERE run_id = ?1 AND status IN ('running', 'pending')")?.execute(params![run_id, status, reason])?;
            Ok(())
        })
    }

    /// A process group was started for `step`; it counts as ended once the attempt or repair round
    /// that started it is recorded as finished (or [`Self::process_ended`] says so).
    pub fn process_started(
        &self,
        run_id: &str,
        step: &str,
        what: &str,
        pgid: i32,
        start_ticks: Option<u64>,
    ) -> Result<i64> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO processes (run_id, step, what, pgid, start_ticks) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![run_id, step, what, pgid, start_ticks.map(|t| t as i64)])?;
            Ok(tx.last_insert_rowid())
        })
    }

    pub fn process_ended(&self, id: i64) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE processes SET ended = 1 WHERE id = ?1")?.execute(params![id]).map(drop)
        })
    }

    /// Process groups of `run_id` not seen to end (its runner died while they ran).
    pub fn leftover_processes(&self, run_id: &str) -> Result<Vec<ProcessRow>> {
        self.read(|conn| {
            let mut statement = conn.prepare(
                "SELECT id, step, what, pgid, start_ticks FROM processes WHERE run_id = ?1 AND ended = 0 ORDER BY id",
            )?;
            statement
                .query_map(params![run_id], |r| {
                    Ok(ProcessRow {
                        id: r.get(0)?,
                        step: r.get(1)?,
                        what: r.get(2)?,
                        pgid: r.get(3)?,
                        start_ticks: r.get::<_, Option<i64>>(4)?.map(|t| t as u64),
                    })
                })?
                .collect()
        })
    }

    /// Ask the runner of `run_id` to cancel it (it checks several times a second).
    pub fn request_cancel(&self, run_id: &str) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE runs SET cancel_requested = 1 WHERE id = ?1")?
                .execute(params![run_id])
                .map(drop)
        })
    }

    pub fn cancel_requested(&self, run_id: &str) -> Result<bool> {
        self.read(|conn| {
            conn.query_row("SELECT cancel_requested FROM runs WHERE id = ?1", params![run_id], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v != 0)
        })
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRow>> {
        self.read(|conn| {
            let mut statement = conn.prepare(&format!("{RUN_COLUMNS} ORDER BY started_at DESC, id DESC"))?;
            statement.query_map([], run_row)?.collect()
        })
    }

    /// Record what `decide` answered after `step` ended (before any of it takes effect), with
    /// its event.
    pub fn decision(
        &self,
        run_id: &str,
        session: u32,
        step: &str,
        directives: &str,
        at: u64,
        event: EventRecord,
    ) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO decisions (run_id, seq, session, step, directives, at)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM decisions WHERE run_id = ?1), ?2, ?3, ?4, ?5)",
            )?
            .execute(params![run_id, session, step, directives, at as i64])?;
            insert_event(tx, run_id, session, event)
        })
    }

    /// A decision added steps to a running run: `steps` is every step of it now, in order (new
    /// ones are pending; an existing step whose definition changed is pending again).
    pub fn add_steps(&self, run_id: &str, steps: &[StepDefinition]) -> Result<()> {
        self.write(|tx| upsert_steps(tx, run_id, steps))
    }

    /// A run's decisions, in the order they were made.
    pub fn decisions(&self, run_id: &str) -> Result<Vec<DecisionRow>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT seq, session, step, directives FROM decisions WHERE run_id = ?1 ORDER BY seq",
            )?;
            statement
                .query_map(params![run_id], |r| {
                    Ok(DecisionRow {
                        seq: r.get(0)?,
                        session: r.get(1)?,
                        step: r.get(2)?,
                        directives: r.get(3)?,
                    })
                })?
                .collect()
        })
    }

    /// Replace what later templates read as `step`'s output (a `decide` set it).
    pub fn set_step_output(&self, run_id: &str, step: &str, output: &str) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE steps SET output = ?3 WHERE run_id = ?1 AND name = ?2")?
                .execute(params![run_id, step, output])?;
            Ok(())
        })
    }

    pub fn run(&self, run_id: &str) -> Result<RunRow> {
        self.read(|conn| {
            conn.query_row(&format!("{RUN_COLUMNS} WHERE id = ?1"), params![run_id], run_row).optional()
        })?
        .ok_or_else(|| StoreError::NotFound(format!("no run `{run_id}` in {}", self.path.display())))
    }

    /// The run `reference` names: its id, a unique prefix of one, or `latest`.
    pub fn resolve(&self, reference: &str) -> Result<String> {
        let ids: Vec<String> = self.read(|conn| {
            let mut statement = conn.prepare("SELECT id FROM runs ORDER BY started_at DESC, id DESC")?;
            statement.query_map([], |r| r.get(0))?.collect()
        })?;
        if reference == "latest" {
            return ids.into_iter().next().ok_or_else(|| StoreError::NotFound("no runs recorded yet".into()));
        }
        if ids.iter().any(|id| id == reference) {
            return Ok(reference.to_string());
        }
        let matching: Vec<&String> = ids.iter().filter(|id| id.starts_with(reference)).collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(StoreError::NotFound(format!(
                "no run `{reference}` in {}; `greenlight runs` lists them",
                self.path.display()
            ))),
            many => Err(StoreError::NotFound(format!(
                "`{reference}` could be any of {} runs ({}, ...); give more of the id",
                many.len(),
                many.iter().take(3).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// A run's steps in definition order (removed steps last).
    pub fn steps(&self, run_id: &str) -> Result<Vec<StepRow>> {
        self.read(|conn| {
            let mut statement = conn.prepare(
                "SELECT name, position, definition_hash, status, attempts, repairs, started_at, finished_at,
                     duration_ms, exit_code, reason, output, log, usage, reused_from
                 FROM steps WHERE run_id = ?1 ORDER BY position < 0, position",
            )?;
            statement
                .query_map(params![run_id], |r| {
                    Ok(StepRow {
                        name: r.get(0)?,
                        position: r.get::<_, i64>(1)?.max(0) as u32,
                        definition_hash: r.get(2)?,
                        status: r.get(3)?,
                        attempts: r.get(4)?,
                        repairs: r.get(5)?,
                        started_at: opt_u64(r, 6)?,
                        finished_at: opt_u64(r, 7)?,
                        duration_ms: opt_u64(r, 8)?,
                        exit_code: r.get(9)?,
                        reason: r.get(10)?,
                        output: r.get(11)?,
                        log: r.get::<_, Option<String>>(12)?.map(PathBuf::from),
                        usage: r.get(13)?,
                        reused_from: r.get(14)?,
                    })
                })?
                .collect()
        })
    }

    /// A run's attempts, by step and number.
    pub fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRow>> {
        self.read(|conn| {
            let mut statement = conn.prepare(
                "SELECT step, attempt, session, what, log, started_at, finished_at, status, exit_code, reason,
                     checks, duration_ms
                 FROM attempts WHERE run_id = ?1 ORDER BY started_at, step, attempt",
            )?;
            statement
                .query_map(params![run_id], |r| {
                    Ok(AttemptRow {
                        step: r.get(0)?,
                        attempt: r.get(1)?,
                        session: r.get(2)?,
                        what: r.get(3)?,
                        log: r.get::<_, Option<String>>(4)?.map(PathBuf::from),
                        started_at: r.get::<_, i64>(5)? as u64,
                        finished_at: opt_u64(r, 6)?,
                        status: r.get(7)?,
                        exit_code: r.get(8)?,
                        reason: r.get(9)?,
                        checks: r.get(10)?,
                        duration_ms: opt_u64(r, 11)?,
                    })
                })?
                .collect()
        })
    }

    /// A run's events after event `after` (0: all), in order, with their ids.
    pub fn events(&self, run_id: &str, after: i64) -> Result<Vec<(i64, String)>> {
        self.read(|conn| {
            let mut statement =
                conn.prepare("SELECT id, body FROM events WHERE run_id = ?1 AND id > ?2 ORDER BY id")?;
            statement.query_map(params![run_id, after], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// `PRAGMA integrity_check`: `ok`, or what is wrong.
    pub fn integrity_check(&self) -> Result<String> {
        self.read(|conn| {
            let mut statement = conn.prepare("PRAGMA integrity_check")?;
            let lines: Vec<String> =
                statement.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            Ok(lines.join("\n"))
        })
    }
}

const RUN_COLUMNS: &str = "SELECT id, name, file, file_path, selected, definition, definition_hash, vars,
    max_concurrency, workspace, run_dir, status, reason, started_at, finished_at, sessions, runner_pid,
    cancel_requested, commit_sha, blocked_artifact, reused_from, grants, component_sha256 FROM runs";

fn run_row(r: &rusqlite::Row) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        name: r.get(1)?,
        file: r.get(2)?,
        file_path: PathBuf::from(r.get::<_, String>(3)?),
        selected: r.get(4)?,
        definition: r.get(5)?,
        definition_hash: r.get(6)?,
        vars: r.get(7)?,
        max_concurrency: r.get(8)?,
        workspace: PathBuf::from(r.get::<_, String>(9)?),
        run_dir: PathBuf::from(r.get::<_, String>(10)?),
        status: r.get(11)?,
        reason: r.get(12)?,
        started_at: r.get::<_, i64>(13)? as u64,
        finished_at: opt_u64(r, 14)?,
        sessions: r.get(15)?,
        runner_pid: r.get(16)?,
        cancel_requested: r.get::<_, i64>(17)? != 0,
        commit: r.get(18)?,
        blocked_artifact: r.get::<_, Option<String>>(19)?.map(PathBuf::from),
        reused_from: r.get(20)?,
        grants: r.get(21)?,
        component_sha256: r.get(22)?,
    })
}

fn opt_u64(r: &rusqlite::Row, index: usize) -> rusqlite::Result<Option<u64>> {
    Ok(r.get::<_, Option<i64>>(index)?.map(|v| v as u64))
}

fn upsert_steps(tx: &Transaction, run_id: &str, steps: &[StepDefinition]) -> rusqlite::Result<()> {
    let mut statement = tx.prepare(
        "INSERT INTO steps (run_id, name, position, definition_hash, status) VALUES (?1, ?2, ?3, ?4, 'pending')
         ON CONFLICT (run_id, name) DO UPDATE SET
             position = excluded.position,
             status = CASE WHEN steps.definition_hash = excluded.definition_hash AND steps.status <> 'removed'
                           THEN steps.status ELSE 'pending' END,
             definition_hash = excluded.definition_hash",
    )?;
    for (position, step) in steps.iter().enumerate() {
        statement.execute(params![run_id, step.name, position as i64, step.definition_hash])?;
    }
    Ok(())
}

/// `step`'s process groups have ended (recorded with the attempt or repair round that ran them,
/// which saves a transaction per step).
fn processes_done(tx: &Transaction, run_id: &str, step: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE processes SET ended = 1 WHERE run_id = ?1 AND step = ?2 AND ended = 0")?
        .execute(params![run_id, step])
        .map(drop)
}

fn insert_event(tx: &Transaction, run_id: &str, session: u32, event: EventRecord) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO events (run_id, session, kind, body) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![run_id, session, event.kind, event.body])
        .map(drop)
}

/// A path as one shell word, for commands in messages that people paste.
fn shell_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    shlex::try_quote(&text).map_or_else(|_| text.to_string(), |q| q.into_owned())
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `application_id`, `user_version` and how many tables the database has.
///
/// One statement, so one read transaction: a store another runner is creating at this moment is
/// seen either not at all or whole (never its tables without its application_id).
fn identify(conn: &Connection) -> rusqlite::Result<(i32, i32, i64)> {
    conn.query_row(
        "SELECT (SELECT application_id FROM pragma_application_id),
                (SELECT user_version FROM pragma_user_version),
                (SELECT count(*) FROM sqlite_master)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// `PRAGMA journal_mode = WAL`. Switching a database to WAL needs it to itself, and SQLite then
/// answers BUSY at once, without the busy handler (two runners creating the store together):
/// retry for as long as the busy timeout.
/// SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms between tries; another runner's
/// transaction lasts tens of microseconds. So: retry soon, then back off to 1 ms, for up to
/// [`BUSY_TIMEOUT`] in all. `tries` counts from 0.
fn wait_for_the_other_writer(tries: i32) -> bool {
    const FIRST: u64 = 20; // µs
    const LAST: u64 = 1000; // µs
    let pause = (FIRST << tries.clamp(0, 6)).min(LAST);
    // The pauses add up to less than `tries` ms, so this bound keeps the total under the timeout.
    if tries as u128 >= BUSY_TIMEOUT.as_millis() {
        return false;
    }
    std::thread::sleep(Duration::from_micros(pause));
    true
}

fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// A file that exists must start like an SQLite database; checked before SQLite touches it.
fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else { return Ok(()) };
    let mut header = [0u8; 16];
    let read = file.read(&mut header).unwrap_or(0);
    if read == 0 {
        return Ok(());
    }
    if read < 16 || &header != b"SQLite format 3\0" {
        return Err(StoreError::Foreign { path: path.to_path_buf(), why: "not an SQLite database".into() });
    }
    Ok(())
}

fn classify(path: &Path, error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt) => {
            StoreError::Damaged { path: path.to_path_buf(), detail: error.to_string() }
        }
        Some(ErrorCode::NotADatabase) => {
            StoreError::Foreign { path: path.to_path_buf(), why: error.to_string() }
        }
        _ => StoreError::Sqlite { path: path.to_path_buf(), source: error },
    }
}

/// `.greenlight/` ignores itself, so run records never show up as changes to the repository.
fn ignore_itself(dir: &Path) {
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        let _ = std::fs::write(&ignore, "# greenlight's run records; never part of the repository\n*\n");
    }
}

#[cfg(test)]
mod tests;
