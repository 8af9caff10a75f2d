use super::*;

use std::sync::{Arc, Barrier};

use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn workspace() -> TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn db_path(workspace: &Path) -> PathBuf {
    workspace.join(".greenlight").join(FILE)
}

/// `path` with `suffix` appended to its file name (`runs.db-wal`, `runs.db-shm`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn assert_no_wal_or_shm(path: &Path) {
    for suffix in ["-wal", "-shm", "-journal"] {
        let side = sibling(path, suffix);
        assert!(!side.exists(), "{} was created", side.display());
    }
}

fn open(workspace: &Path) -> Store {
    match Store::open_or_create(workspace) {
        Ok(store) => store,
        Err(e) => panic!("open_or_create failed: {e}"),
    }
}

/// The error `open_or_create` gives; panics if it succeeds.
fn open_error(workspace: &Path) -> StoreError {
    match Store::open_or_create(workspace) {
        Ok(_) => panic!("open_or_create accepted {}", db_path(workspace).display()),
        Err(e) => e,
    }
}

fn new_run(workspace: &Path, id: &str, started_at: u64) -> NewRun {
    NewRun {
        id: id.to_string(),
        name: format!("workflow of {id}"),
        file: "flow.yaml".into(),
        file_path: workspace.join("flow.yaml"),
        selected: None,
        definition: "steps: [a, b, c]".into(),
        definition_hash: "def-1".into(),
        vars: "{}".into(),
        max_concurrency: Some(2),
        workspace: workspace.to_path_buf(),
        run_dir: workspace.join(".greenlight").join("runs").join(id),
        started_at,
        reused_from: None,
        grants: None,
        component_sha256: None,
    }
}

fn step_defs(steps: &[(&str, &str)]) -> Vec<StepDefinition> {
    steps
        .iter()
        .map(|(name, hash)| StepDefinition { name: name.to_string(), definition_hash: hash.to_string() })
        .collect()
}

fn three_steps() -> Vec<StepDefinition> {
    step_defs(&[("build", "h-build"), ("test", "h-test"), ("lint", "h-lint")])
}

fn event(body: &str) -> EventRecord<'_> {
    EventRecord { kind: "test", body }
}

fn succeeded(output: &str) -> StepEnded {
    StepEnded {
        status: "succeeded".into(),
        attempts: 1,
        duration_ms: 5,
        exit_code: Some(0),
        output: Some(output.into()),
        ..StepEnded::default()
    }
}

fn step<'a>(steps: &'a [StepRow], name: &str) -> &'a StepRow {
    steps.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no step {name} in {steps:?}"))
}

fn names(steps: &[StepRow]) -> Vec<&str> {
    steps.iter().map(|s| s.name.as_str()).collect()
}

/// A store with one run (`run-1`, steps build/test/lint) recorded, then closed, its WAL folded
/// into the main file.
fn closed_store_with_a_run(workspace: &Path) -> PathBuf {
    {
        let store = open(workspace);
        store.create_run(&new_run(workspace, "run-1", 1_000), &three_steps(), 42).unwrap();
        store.event("run-1", 1, event("{\"hello\":1}")).unwrap();
    }
    let path = db_path(workspace);
    checkpoint(&path);
    path
}

/// Fold the WAL into the main file through a connection of our own.
fn checkpoint(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    drop(conn);
    let wal = sibling(path, "-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0, "WAL not folded in");
}

// ---------------------------------------------------------------------------------------------
// Creating and recognising the store
// ---------------------------------------------------------------------------------------------

#[test]
fn open_or_create_on_empty_workspace_creates_a_wal_store_that_ignores_itself() {
    let ws = workspace();
    let store = open(ws.path());
    let path = db_path(ws.path());
    assert_eq!(store.path(), path);
    assert!(path.is_file());

    let ignore = std::fs::read_to_string(ws.path().join(".greenlight").join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|line| line.trim() == "*"), "{ignore:?}");

    let conn = Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap();
    assert_eq!(app, 0x676c_6e74);
    let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn open_or_create_reopens_its_own_store_and_keeps_the_runs() {
    let ws = workspace();
    {
        let store = open(ws.path());
        store.create_run(&new_run(ws.path(), "run-1", 1), &three_steps(), 1).unwrap();
    }
    let store = open(ws.path());
    assert_eq!(store.runs().unwrap().len(), 1);
    let again = Store::open_existing(ws.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.run("run-1").unwrap().id, "run-1");
}

#[test]
fn open_or_create_keeps_an_existing_gitignore() {
    let ws = workspace();
    std::fs::create_dir_all(ws.path().join(".greenlight")).unwrap();
    std::fs::write(ws.path().join(".greenlight").join(".gitignore"), "mine\n").unwrap();
    let _store = open(ws.path());
    assert_eq!(std::fs::read_to_string(ws.path().join(".greenlight").join(".gitignore")).unwrap(), "mine\n");
}

#[test]
fn an_empty_file_is_made_into_a_store() {
    let ws = workspace();
    std::fs::create_dir_all(ws.path().join(".greenlight")).unwrap();
    std::fs::write(db_path(ws.path()), b"").unwrap();
    let store = open(ws.path());
    store.create_run(&new_run(ws.path(), "run-1", 1), &three_steps(), 1).unwrap();
    assert_eq!(store.runs().unwrap().len(), 1);
}

fn assert_foreign_and_untouched(ws: &Path, contents: &[u8]) {
    let path = db_path(ws);
    let error = open_error(ws);
    assert!(matches!(error, StoreError::Foreign { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("has not changed it"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), contents, "the file was changed");
    assert_no_wal_or_shm(&path);
}

#[test]
fn a_text_file_in_place_of_the_store_is_foreign_and_left_alone() {
    let ws = workspace();
    std::fs::create_dir_all(ws.path().join(".greenlight")).unwrap();
    let contents = b"hello, not a database\n";
    std::fs::write(db_path(ws.path()), contents).unwrap();
    assert_foreign_and_untouched(ws.path(), contents);
}

#[test]
fn a_random_binary_file_in_place_of_the_store_is_foreign_and_left_alone() {
    let ws = workspace();
    std::fs::create_dir_all(ws.path().join(".greenlight")).unwrap();
    // A little linear congruential generator: random-looking, the same every time.
    let mut state: u32 = 0x1234_5678;
    let contents: Vec<u8> = (0..100)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(db_path(ws.path()), &contents).unwrap();
    assert_foreign_and_untouched(ws.path(), &contents);
}

#[test]
fn a_file_shorter_than_the_sqlite_header_is_foreign() {
    let ws = workspace();
    std::fs::create_dir_all(ws.path().join(".greenlight")).unwrap();
    let contents = b"SQLite fo";
    std::fs::write(db_path(ws.path()), contents).unwrap();
    assert_foreign_and_untouched(ws.path(), contents);
}

#[test]
fn open_at_of_a_foreign_file_is_refused_too() {
    let dir = workspace();
    let path = dir.path().join("elsewhere.db");
    std::fs::write(&path, b"hello, not a database\n").unwrap();
    let error = match Store::open_at(&path, true) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    };
    assert!(matches!(error, StoreError::Foreign { .. }), "{error:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"hello, not a database\n");
}

#[test]
fn another_applications_sqlite_database_is_foreign_and_left_alone() {
    let ws = workspace();
    std::fs::create_dir_all(ws.path().join(".greenlight")).unwrap();
    let path = db_path(ws.path());
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE notes(x); INSERT INTO notes VALUES ('keep me');").unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let error = open_error(ws.path());
    assert!(matches!(error, StoreError::Foreign { .. }), "{error:?}");
    assert!(error.to_string().contains("tables of its own"), "{error}");
    assert!(error.to_string().contains("has not changed it"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file was changed");
    assert_no_wal_or_shm(&path);

    // Still the other application's database, unchanged in content and journal mode.
    let conn = Connection::open(&path).unwrap();
    let note: String = conn.query_row("SELECT x FROM notes", [], |r| r.get(0)).unwrap();
    assert_eq!(note, "keep me");
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete");
}

#[test]
fn an_sqlite_database_with_another_application_id_and_no_tables_is_foreign() {
    let ws = workspace();
    std::fs::create_dir_all(ws.path().join(".greenlight")).unwrap();
    let path = db_path(ws.path());
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "application_id", 0x1234_5678).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let error = open_error(ws.path());
    assert!(matches!(error, StoreError::Foreign { .. }), "{error:?}");
    assert!(error.to_string().contains("0x12345678"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file was changed");
    assert_no_wal_or_shm(&path);
}

#[test]
fn an_sqlite_database_with_only_a_user_version_is_foreign() {
    let ws = workspace();
    std::fs::create_dir_all(ws.path().join(".greenlight")).unwrap();
    let path = db_path(ws.path());
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(open_error(ws.path()), StoreError::Foreign { .. }));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_store_of_a_newer_schema_is_refused_and_left_alone() {
    let ws = workspace();
    let path = closed_store_with_a_run(ws.path());
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    checkpoint(&path);
    let before = std::fs::read(&path).unwrap();

    let error = open_error(ws.path());
    assert!(matches!(error, StoreError::Newer { found: 99, .. }), "{error:?}");
    assert!(error.to_string().contains("upgrade greenlight"), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file was changed");

    let error = match Store::open_existing(ws.path()) {
        Ok(_) => panic!("open_existing accepted a newer store"),
        Err(e) => e,
    };
    assert!(matches!(error, StoreError::Newer { found: 99, .. }), "{error:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file was changed");
}

/// The byte range of the page the `runs` table lives on (page 2 of a fresh store), read through
/// a connection of our own.
fn runs_table_page(path: &Path) -> std::ops::Range<usize> {
    let conn = Connection::open(path).unwrap();
    let page_size = conn.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0)).unwrap() as usize;
    let root = conn
        .query_row("SELECT rootpage FROM sqlite_master WHERE name = 'runs'", [], |r| r.get::<_, i64>(0))
        .unwrap() as usize;
    assert_eq!(root, 2, "the runs table is expected on page 2");
    (root - 1) * page_size..root * page_size
}

/// Overwrite `range` of the store file with 0xff; returns the file's new bytes.
fn corrupt(path: &Path, range: std::ops::Range<usize>) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() >= range.end, "the store is only {} bytes", bytes.len());
    bytes[range].fill(0xff);
    std::fs::write(path, &bytes).unwrap();
    bytes
}

// Note: damage must hit bytes SQLite uses. With one run, the middle of page 2 (say offset
// 4096 + 100) is the page's free space: SQLite keeps no page checksums, so nothing (not even
// `PRAGMA integrity_check`) can tell garbage there from zeros. The tests below damage the page's
// b-tree header, and the cell holding the run's row (cells are packed at the end of the page).

#[test]
fn a_damaged_store_is_reported_as_damaged_and_never_rewritten() {
    let ws = workspace();
    let path = closed_store_with_a_run(ws.path());
    let page = runs_table_page(&path);
    checkpoint(&path);
    let bytes = corrupt(&path, page.start..page.start + 200);

    // Page 1 still says "greenlight store", so opening may succeed; reading the runs must not.
    let error = match Store::open_or_create(ws.path()) {
        Err(e) => e,
        Ok(store) => {
            let check = store.integrity_check();
            assert!(!matches!(check.as_deref(), Ok("ok")), "integrity_check missed the damage: {check:?}");
            match store.runs() {
                Ok(runs) => panic!("damage went unnoticed: {runs:?}"),
                Err(e) => e,
            }
        }
    };
    assert!(matches!(error, StoreError::Damaged { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("damaged"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("has not changed it"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "greenlight rewrote a damaged store");
}

#[test]
fn damage_inside_a_row_is_found_by_the_integrity_check_and_never_rewritten() {
    let ws = workspace();
    let path = closed_store_with_a_run(ws.path());
    let page = runs_table_page(&path);
    checkpoint(&path);
    let bytes = corrupt(&path, page.end - 300..page.end - 100);

    let noticed = match Store::open_or_create(ws.path()) {
        Err(e) => e.to_string(),
        Ok(store) => match (store.integrity_check(), store.runs()) {
            (Err(e), _) | (_, Err(e)) => e.to_string(),
            (Ok(check), Ok(runs)) => {
                assert_ne!(check, "ok", "damage went unnoticed: {runs:?}");
                check
            }
        },
    };
    assert!(!noticed.is_empty());
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "greenlight rewrote a damaged store");
}

#[test]
fn open_existing_without_a_store_is_missing_and_creates_nothing() {
    let ws = workspace();
    let error = match Store::open_existing(ws.path()) {
        Ok(_) => panic!("opened a store that does not exist"),
        Err(e) => e,
    };
    assert!(matches!(error, StoreError::Missing { .. }), "{error:?}");
    assert!(error.to_string().contains("`greenlight run"), "{error}");
    assert!(!ws.path().join(".greenlight").exists());
}

// ---------------------------------------------------------------------------------------------
// Recording runs
// ---------------------------------------------------------------------------------------------

#[test]
fn a_run_round_trips_through_its_whole_life() {
    let ws = workspace();
    let store = open(ws.path());
    let new = new_run(ws.path(), "run-1", 1_000);
    store.create_run(&new, &three_steps(), 4242).unwrap();

    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.id, "run-1");
    assert_eq!(run.status, "running");
    assert_eq!(run.name, new.name);
    assert_eq!(run.file, new.file);
    assert_eq!(run.file_path, new.file_path);
    assert_eq!(run.definition, new.definition);
    assert_eq!(run.definition_hash, new.definition_hash);
    assert_eq!(run.vars, "{}");
    assert_eq!(run.max_concurrency, Some(2));
    assert_eq!(run.workspace, new.workspace);
    assert_eq!(run.run_dir, new.run_dir);
    assert_eq!(run.started_at, 1_000);
    assert_eq!(run.finished_at, None);
    assert_eq!(run.sessions, 1);
    assert_eq!(run.runner_pid, Some(4242));
    assert!(!run.cancel_requested);
    assert_eq!(store.run("run-1").unwrap(), *run);

    let steps = store.steps("run-1").unwrap();
    assert_eq!(names(&steps), ["build", "test", "lint"]);
    assert_eq!(steps.iter().map(|s| s.position).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(steps.iter().all(|s| s.status == "pending" && s.attempts == 0 && s.output.is_none()));

    // An attempt starts.
    let log = ws.path().join("build.1.log");
    store.attempt_started("run-1", 1, "build", 1, "command", Some(&log), 2_000, event("e1")).unwrap();
    let build = step(&store.steps("run-1").unwrap(), "build").clone();
    assert_eq!(build.status, "running");
    assert_eq!(build.attempts, 1);
    assert_eq!(build.started_at, Some(2_000));
    let attempts = store.attempts("run-1").unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].step, "build");
    assert_eq!(attempts[0].attempt, 1);
    assert_eq!(attempts[0].session, 1);
    assert_eq!(attempts[0].what, "command");
    assert_eq!(attempts[0].log.as_deref(), Some(log.as_path()));
    assert_eq!(attempts[0].status, "running");
    assert_eq!(attempts[0].finished_at, None);

    // It ends.
    let ended = AttemptEnded {
        status: "succeeded".into(),
        exit_code: Some(0),
        reason: None,
        checks: "[]".into(),
        duration_ms: 150,
    };
    store.attempt_finished("run-1", 1, "build", 1, &ended, 2_150, event("e2")).unwrap();
    let attempt = &store.attempts("run-1").unwrap()[0];
    assert_eq!(attempt.status, "succeeded");
    assert_eq!(attempt.exit_code, Some(0));
    assert_eq!(attempt.checks.as_deref(), Some("[]"));
    assert_eq!(attempt.duration_ms, Some(150));
    assert_eq!(attempt.finished_at, Some(2_150));

    // A repair round on another step.
    store.repair_started("run-1", 1, "test", 2, event("e3")).unwrap();
    store.repair_started("run-1", 1, "test", 1, event("e4")).unwrap();
    assert_eq!(step(&store.steps("run-1").unwrap(), "test").repairs, 2, "repairs never go down");

    // The step ends, with empty output.
    store.step_ended("run-1", 1, "build", &succeeded(""), 2_200, Some(event("e5"))).unwrap();
    let build = step(&store.steps("run-1").unwrap(), "build").clone();
    assert_eq!(build.status, "succeeded");
    assert_eq!(build.output, Some(String::new()), "empty output must stay Some(\"\")");
    assert_eq!(build.exit_code, Some(0));
    assert_eq!(build.duration_ms, Some(5));
    assert_eq!(build.finished_at, Some(2_200));
    assert_eq!(build.log, None);

    // The run finishes.
    let finished = RunEnded {
        status: "succeeded".into(),
        reason: None,
        commit: Some("abc123".into()),
        blocked_artifact: None,
    };
    store.run_finished("run-1", 1, &finished, 3_000, event("e6")).unwrap();
    let run = store.run("run-1").unwrap();
    assert_eq!(run.status, "succeeded");
    assert_eq!(run.commit.as_deref(), Some("abc123"));
    assert_eq!(run.finished_at, Some(3_000));

    // Events, in order; `after` skips those already seen.
    let events = store.events("run-1", 0).unwrap();
    let bodies: Vec<&str> = events.iter().map(|(_, body)| body.as_str()).collect();
    assert_eq!(bodies, ["e1", "e2", "e3", "e4", "e5", "e6"]);
    let second = events[1].0;
    let later: Vec<String> = store.events("run-1", second).unwrap().into_iter().map(|(_, b)| b).collect();
    assert_eq!(later, ["e3", "e4", "e5", "e6"]);
    assert!(store.events("run-1", events[5].0).unwrap().is_empty());
    assert!(store.events("other-run", 0).unwrap().is_empty());
}

#[test]
fn step_ended_without_output_stores_none_and_keeps_the_attempts_log() {
    let ws = workspace();
    let store = open(ws.path());
    store.create_run(&new_run(ws.path(), "run-1", 1), &three_steps(), 1).unwrap();
    let log = ws.path().join("test.log");
    store.attempt_started("run-1", 1, "test", 1, "command", Some(&log), 10, event("a")).unwrap();
    let failed = StepEnded {
        status: "failed".into(),
        attempts: 3,
        exit_code: Some(2),
        reason: Some("tests failed".into()),
        ..StepEnded::default()
    };
    store.step_ended("run-1", 1, "test", &failed, 20, None).unwrap();
    let test = step(&store.steps("run-1").unwrap(), "test").clone();
    assert_eq!(test.status, "failed");
    assert_eq!(test.output, None);
    assert_eq!(test.attempts, 3);
    assert_eq!(test.reason.as_deref(), Some("tests failed"));
    // step_ended without a log leaves the one the step already had (none here: steps get
    // their log through step_ended only).
    assert_eq!(test.log, None);
    assert_eq!(store.events("run-1", 0).unwrap().len(), 1, "no event without one given");

    let with_log = StepEnded { log: Some(log.clone()), ..succeeded("out") };
    store.step_ended("run-1", 1, "build", &with_log, 30, None).unwrap();
    store.step_ended("run-1", 1, "build", &succeeded("out"), 40, None).unwrap();
    assert_eq!(step(&store.steps("run-1").unwrap(), "build").log.as_deref(), Some(log.as_path()));
}

#[test]
fn create_run_with_a_taken_id_fails_and_leaves_the_first_run_alone() {
    let ws = workspace();
    let store = open(ws.path());
    store.create_run(&new_run(ws.path(), "run-1", 1_000), &three_steps(), 1).unwrap();
    store.step_ended("run-1", 1, "build", &succeeded("built"), 1_100, None).unwrap();
    let run_before = store.run("run-1").unwrap();
    let steps_before = store.steps("run-1").unwrap();

    let mut again = new_run(ws.path(), "run-1", 5_000);
    again.name = "an impostor".into();
    let other_steps = step_defs(&[("build", "changed"), ("deploy", "h-deploy")]);
    assert!(store.create_run(&again, &other_steps, 2).is_err());

    assert_eq!(store.run("run-1").unwrap(), run_before);
    assert_eq!(store.steps("run-1").unwrap(), steps_before);
    assert_eq!(store.runs().unwrap().len(), 1);
}

#[test]
fn run_of_an_unknown_id_is_not_found() {
    let ws = workspace();
    let store = open(ws.path());
    let error = store.run("nope").unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
    assert!(error.to_string().contains("nope"), "{error}");
}

#[test]
fn runs_are_listed_newest_first() {
    let ws = workspace();
    let store = open(ws.path());
    for (id, at) in [("b", 2_000), ("a", 3_000), ("c", 1_000)] {
        store.create_run(&new_run(ws.path(), id, at), &three_steps(), 1).unwrap();
    }
    let ids: Vec<String> = store.runs().unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

// ---------------------------------------------------------------------------------------------
// Resuming
// ---------------------------------------------------------------------------------------------

#[test]
fn begin_session_starts_a_new_session_and_marks_running_attempts_lost() {
    let ws = workspace();
    let store = open(ws.path());
    store.create_run(&new_run(ws.path(), "run-1", 1), &three_steps(), 100).unwrap();
    store.attempt_started("run-1", 1, "build", 1, "command", None, 10, event("a")).unwrap();
    store.request_cancel("run-1").unwrap();
    store
        .run_finished(
            "run-1",
            1,
            &RunEnded { status: "interrupted".into(), reason: Some("killed".into()), ..RunEnded::default() },
            20,
            event("b"),
        )
        .unwrap();

    assert_eq!(store.begin_session("run-1", 200, None).unwrap(), 2);

    let run = store.run("run-1").unwrap();
    assert_eq!(run.status, "running");
    assert_eq!(run.sessions, 2);
    assert_eq!(run.runner_pid, Some(200));
    assert_eq!(run.reason, None);
    assert_eq!(run.finished_at, None);
    assert!(!run.cancel_requested);
    let attempt = &store.attempts("run-1").unwrap()[0];
    assert_eq!(attempt.status, "lost");
    assert!(attempt.reason.is_some());
    // Without a definition the steps are as they were.
    assert_eq!(names(&store.steps("run-1").unwrap()), ["build", "test", "lint"]);

    assert_eq!(store.begin_session("run-1", 300, None).unwrap(), 3);
}

#[test]
fn begin_session_with_a_changed_definition_reconciles_the_steps() {
    let ws = workspace();
    let store = open(ws.path());
    store.create_run(&new_run(ws.path(), "run-1", 1), &three_steps(), 100).unwrap();
    store.step_ended("run-1", 1, "build", &succeeded("built"), 10, None).unwrap();
    store.step_ended("run-1", 1, "test", &succeeded("tested"), 20, None).unwrap();

    // `build` unchanged, `test` changed, `lint` removed, `docs` new.
    let new_steps = step_defs(&[("build", "h-build"), ("test", "h-test-2"), ("docs", "h-docs")]);
    let session =
        store.begin_session("run-1", 200, Some(("steps: [build, test, docs]", "def-2", &new_steps)));
    assert_eq!(session.unwrap(), 2);

    let run = store.run("run-1").unwrap();
    assert_eq!(run.definition, "steps: [build, test, docs]");
    assert_eq!(run.definition_hash, "def-2");

    let steps = store.steps("run-1").unwrap();
    assert_eq!(names(&steps), ["build", "test", "docs", "lint"], "removed steps sort last");
    let build = step(&steps, "build");
    assert_eq!(build.status, "succeeded", "an unchanged step keeps its result");
    assert_eq!(build.output.as_deref(), Some("built"));
    assert_eq!(build.position, 0);
    let test = step(&steps, "test");
    assert_eq!(test.status, "pending", "a changed step runs again");
    assert_eq!(test.definition_hash, "h-test-2");
    assert_eq!(test.position, 1);
    let docs = step(&steps, "docs");
    assert_eq!(docs.status, "pending");
    assert_eq!(docs.position, 2);
    assert_eq!(step(&steps, "lint").status, "removed");
}

#[test]
fn a_removed_step_that_comes_back_is_pending_again() {
    let ws = workspace();
    let store = open(ws.path());
    let original = step_defs(&[("build", "h-build"), ("lint", "h-lint")]);
    store.create_run(&new_run(ws.path(), "run-1", 1), &original, 100).unwrap();
    store.step_ended("run-1", 1, "lint", &succeeded("linted"), 10, None).unwrap();

    let without_lint = step_defs(&[("build", "h-build")]);
    store.begin_session("run-1", 200, Some(("v2", "def-2", &without_lint))).unwrap();
    assert_eq!(step(&store.steps("run-1").unwrap(), "lint").status, "removed");
    // Still removed when a later session leaves it out again.
    store.begin_session("run-1", 300, Some(("v2", "def-2", &without_lint))).unwrap();
    assert_eq!(step(&store.steps("run-1").unwrap(), "lint").status, "removed");

    store.begin_session("run-1", 400, Some(("v1", "def-1", &original))).unwrap();
    let steps = store.steps("run-1").unwrap();
    assert_eq!(names(&steps), ["build", "lint"]);
    assert_eq!(step(&steps, "lint").status, "pending");
    assert_eq!(step(&steps, "lint").position, 1);
}

#[test]
fn begin_session_with_the_same_definition_keeps_every_result() {
    let ws = workspace();
    let store = open(ws.path());
    store.create_run(&new_run(ws.path(), "run-1", 1), &three_steps(), 100).unwrap();
    store.step_ended("run-1", 1, "build", &succeeded(""), 10, None).unwrap();
    let before = store.steps("run-1").unwrap();
    store.begin_session("run-1", 200, Some(("steps: [a, b, c]", "def-1", &three_steps()))).unwrap();
    assert_eq!(store.steps("run-1").unwrap(), before);
}

// ---------------------------------------------------------------------------------------------
// Finding runs
// ---------------------------------------------------------------------------------------------

fn store_with_runs(ws: &Path, runs: &[(&str, u64)]) -> Store {
    let store = open(ws);
    for (id, at) in runs {
        store.create_run(&new_run(ws, id, *at), &three_steps(), 1).unwrap();
    }
    store
}

#[test]
fn resolve_finds_an_exact_id_even_when_it_prefixes_another() {
    let ws = workspace();
    let store = store_with_runs(ws.path(), &[("20240101-ab", 1), ("20240101-abc", 2)]);
    assert_eq!(store.resolve("20240101-ab").unwrap(), "20240101-ab");
    assert_eq!(store.resolve("20240101-abc").unwrap(), "20240101-abc");
}

#[test]
fn resolve_finds_a_unique_prefix() {
    let ws = workspace();
    let store = store_with_runs(ws.path(), &[("20240101-abc", 1), ("20240102-xyz", 2)]);
    assert_eq!(store.resolve("20240102").unwrap(), "20240102-xyz");
    assert_eq!(store.resolve("20240101-a").unwrap(), "20240101-abc");
}

#[test]
fn resolve_latest_is_the_newest_run_by_start_time() {
    let ws = workspace();
    let store = store_with_runs(ws.path(), &[("zzz-old", 1_000), ("aaa-new", 3_000), ("mmm-mid", 2_000)]);
    assert_eq!(store.resolve("latest").unwrap(), "aaa-new");
}

#[test]
fn resolve_latest_without_runs_is_not_found() {
    let ws = workspace();
    let store = open(ws.path());
    assert!(matches!(store.resolve("latest"), Err(StoreError::NotFound(_))));
}

#[test]
fn resolve_an_ambiguous_prefix_asks_for_more_of_the_id() {
    let ws = workspace();
    let store = store_with_runs(ws.path(), &[("20240101-abc", 1), ("20240101-abd", 2)]);
    let error = store.resolve("20240101-ab").unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("give more of the id"), "{message}");
    assert!(message.contains("20240101-abc") && message.contains("20240101-abd"), "{message}");
}

#[test]
fn resolve_an_unknown_id_points_at_greenlight_runs() {
    let ws = workspace();
    let store = store_with_runs(ws.path(), &[("20240101-abc", 1)]);
    let error = store.resolve("nothing-like-it").unwrap_err();
    assert!(matches!(error, StoreError::NotFound(_)), "{error:?}");
    assert!(error.to_string().contains("`greenlight runs`"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Cancelling, abandoned runs, processes
// ---------------------------------------------------------------------------------------------

#[test]
fn request_cancel_is_seen_by_cancel_requested() {
    let ws = workspace();
    let store = store_with_runs(ws.path(), &[("run-1", 1), ("run-2", 2)]);
    assert!(!store.cancel_requested("run-1").unwrap());
    store.request_cancel("run-1").unwrap();
    assert!(store.cancel_requested("run-1").unwrap());
    assert!(store.run("run-1").unwrap().cancel_requested);
    assert!(!store.cancel_requested("run-2").unwrap(), "only the run asked for");
}

#[test]
fn request_cancel_from_another_store_is_seen_by_the_runner() {
    let ws = workspace();
    let runner = store_with_runs(ws.path(), &[("run-1", 1)]);
    let cli = Store::open_existing(ws.path()).unwrap_or_else(|e| panic!("{e}"));
    cli.request_cancel("run-1").unwrap();
    assert!(runner.cancel_requested("run-1").unwrap());
}

#[test]
fn cancel_requested_of_an_unknown_run_is_an_error() {
    let ws = workspace();
    let store = open(ws.path());
    assert!(store.cancel_requested("nope").is_err());
}

#[test]
fn close_abandoned_ends_the_run_and_its_unfinished_steps_and_attempts() {
    let ws = workspace();
    let store = store_with_runs(ws.path(), &[("run-1", 1)]);
    store.attempt_started("run-1", 1, "build", 1, "command", None, 10, event("a")).unwrap();
    let failed = AttemptEnded { status: "failed".into(), checks: "[]".into(), ..AttemptEnded::default() };
    store.attempt_finished("run-1", 1, "build", 1, &failed, 11, event("b")).unwrap();
    store.attempt_started("run-1", 1, "build", 2, "command", None, 12, event("c")).unwrap();
    store.step_ended("run-1", 1, "test", &succeeded("tested"), 13, None).unwrap();

    store.close_abandoned("run-1", "cancelled", "cancelled while no runner ran it", 99).unwrap();

    let run = store.run("run-1").unwrap();
    assert_eq!(run.status, "cancelled");
    assert_eq!(run.reason.as_deref(), Some("cancelled while no runner ran it"));
    assert_eq!(run.finished_at, Some(99));

    let steps = store.steps("run-1").unwrap();
    assert_eq!(step(&steps, "build").status, "cancelled", "a running step");
    assert_eq!(step(&steps, "lint").status, "cancelled", "a pending step");
    assert_eq!(step(&steps, "build").reason.as_deref(), Some("cancelled while no runner ran it"));
    assert_eq!(step(&steps, "test").status, "succeeded", "a finished step keeps its result");
    assert_eq!(step(&steps, "test").reason, None);

    let attempts = store.attempts("run-1").unwrap();
    let status = |n: u32| attempts.iter().find(|a| a.attempt == n).unwrap().status.clone();
    assert_eq!(status(1), "failed", "a finished attempt keeps its result");
    assert_eq!(status(2), "lost");
}

#[test]
fn processes_not_seen_to_end_are_leftovers() {
    let ws = workspace();
    let store = store_with_runs(ws.path(), &[("run-1", 1), ("run-2", 2)]);
    let first = store.process_started("run-1", "build", "command", 1234, Some(5678)).unwrap();
    let second = store.process_started("run-1", "test", "agent", 2345, None).unwrap();
    let third = store.process_started("run-1", "lint", "check", 3456, Some(1)).unwrap();
    let elsewhere = store.process_started("run-2", "build", "command", 4567, None).unwrap();
    assert!(first < second && second < third);
    assert_ne!(elsewhere, first);

    store.process_ended(second).unwrap();

    let leftovers = store.leftover_processes("run-1").unwrap();
    assert_eq!(
        leftovers,
        [
            ProcessRow {
                id: first,
                step: "build".into(),
                what: "command".into(),
                pgid: 1234,
                start_ticks: Some(5678),
            },
            ProcessRow {
                id: third,
                step: "lint".into(),
                what: "check".into(),
                pgid: 3456,
                start_ticks: Some(1)
            },
        ]
    );
    store.process_ended(first).unwrap();
    store.process_ended(third).unwrap();
    store.process_ended(third).unwrap();
    assert!(store.leftover_processes("run-1").unwrap().is_empty());
    assert_eq!(store.leftover_processes("run-2").unwrap().len(), 1);
    assert!(store.leftover_processes("no-such-run").unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Several stores at once
// ---------------------------------------------------------------------------------------------

fn record_runs(store: &Store, ws: &Path, prefix: &str, count: u32) {
    for i in 0..count {
        let id = format!("{prefix}-{i:03}");
        store.create_run(&new_run(ws, &id, u64::from(i)), &three_steps(), 1).unwrap();
        store.attempt_started(&id, 1, "build", 1, "command", None, u64::from(i), event("started")).unwrap();
        let ended =
            AttemptEnded { status: "succeeded".into(), checks: "[]".into(), ..AttemptEnded::default() };
        store.attempt_finished(&id, 1, "build", 1, &ended, u64::from(i) + 1, event("finished")).unwrap();
    }
}

#[test]
fn two_threads_creating_the_same_store_at_once_both_succeed() {
    for _ in 0..5 {
        let ws = workspace();
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|prefix| {
                let barrier = Arc::clone(&barrier);
                let ws = ws.path().to_path_buf();
                std::thread::spawn(move || {
                    barrier.wait();
                    let store = Store::open_or_create(&ws).unwrap_or_else(|e| panic!("{prefix}: {e}"));
                    record_runs(&store, &ws, prefix, 50);
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("a writer panicked");
        }

        let store = open(ws.path());
        let runs = store.runs().unwrap();
        assert_eq!(runs.len(), 100);
        for run in &runs {
            assert_eq!(store.attempts(&run.id).unwrap().len(), 1);
            assert_eq!(store.events(&run.id, 0).unwrap().len(), 2);
        }
        assert_eq!(store.integrity_check().unwrap(), "ok");
    }
}

#[test]
fn two_stores_in_one_thread_can_interleave_writes() {
    let ws = workspace();
    let a = open(ws.path());
    let b = open(ws.path());
    for i in 0..20u64 {
        let (writer, reader) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let id = format!("run-{i:02}");
        writer.create_run(&new_run(ws.path(), &id, i), &three_steps(), 1).unwrap();
        reader.attempt_started(&id, 1, "build", 1, "command", None, i, event("started")).unwrap();
        writer.step_ended(&id, 1, "build", &succeeded("ok"), i + 1, Some(event("ended"))).unwrap();
        assert_eq!(reader.run(&id).unwrap().id, id, "each sees the other's writes at once");
    }
    assert_eq!(a.runs().unwrap().len(), 20);
    assert_eq!(b.runs().unwrap().len(), 20);
    assert_eq!(a.integrity_check().unwrap(), "ok");
}

// ---------------------------------------------------------------------------------------------
// The runner lock
// ---------------------------------------------------------------------------------------------

#[test]
fn runner_lock_is_exclusive_while_held_and_free_after_drop() {
    let dir = workspace();
    let run_dir = dir.path().join("runs").join("run-1");
    assert!(!RunnerLock::is_held(&run_dir), "no lock file yet");

    let lock = RunnerLock::try_acquire(&run_dir).unwrap();
    assert!(lock.is_some(), "a free lock is taken");
    assert!(run_dir.join("runner.lock").is_file());
    assert!(RunnerLock::is_held(&run_dir));
    assert!(RunnerLock::try_acquire(&run_dir).unwrap().is_none(), "a held lock is not taken twice");
    assert!(RunnerLock::is_held(&run_dir), "is_held does not release it");

    drop(lock);
    assert!(!RunnerLock::is_held(&run_dir));
    let again = RunnerLock::try_acquire(&run_dir).unwrap();
    assert!(again.is_some(), "a released lock can be taken again");
}

#[test]
fn runner_locks_of_different_runs_are_independent() {
    let dir = workspace();
    let one = RunnerLock::try_acquire(&dir.path().join("run-1")).unwrap();
    let two = RunnerLock::try_acquire(&dir.path().join("run-2")).unwrap();
    assert!(one.is_some() && two.is_some());
}

#[test]
fn a_busy_writer_retries_until_the_timeout_then_gives_up() {
    assert!(wait_for_the_other_writer(0), "the first retry comes");
    assert!(wait_for_the_other_writer(9_999));
    assert!(!wait_for_the_other_writer(10_000), "10,000 tries of at most 1 ms: the 10 s timeout");
}
