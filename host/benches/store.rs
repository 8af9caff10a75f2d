//! Run-store benchmarks (issue 5): `cargo bench --bench store` (add `-- --quick` for fewer samples).
//!
//! Two figures:
//!
//! 1. **The store's overhead per state change** (target ≤ 1 ms), through the library API
//!    (`greenlight::store::Store`) in a temp dir on the real disk (the file system is printed; a
//!    tmpfs would make the figure meaningless). A simulated run does what the engine does:
//!    `create_run` with 1,000 steps, the `run_started` event, then for each step
//!    `attempt_started`, `process_started`, `attempt_finished` (which also marks the step's
//!    process group ended), `step_ended` (the last step fails), `run_finished`; then a resume of
//!    it, as `engine::run::begin` and `keep` do: `leftover_processes`, `begin_session`, `steps`,
//!    the 999 `step_kept` events in one transaction (`append_events`) and the last step again. Event bodies are the engine's own `Event`s serialized (a few
//!    hundred bytes, with the checks' JSON). Every call is timed on its own with `Instant`; a
//!    call is one transaction, so one state change. Four cases: one writer (one `Store`, as one
//!    runner) and two writers at once (two threads, two `Store`s on one file: two runners in one
//!    workspace), each back to back (steps that take no time) and paced (a 0.5–1.5 ms sleep after
//!    each step, as while its process runs: a thread that slept finds colder caches, and two
//!    writers collide differently). And one state change (`attempt_started`'s transaction)
//!    through connections of this bench's own: `synchronous = NORMAL` as the store, with cached
//!    statements, without WAL auto-checkpoints, and `FULL` (an fsync a commit), for scale.
//!
//! 2. **The time to resume a 1,000-step run**, end to end with the bench-profile binary: a wide
//!    DAG of 999 `true` steps and a final `test -f ok` needing them all runs once (it fails, exit
//!    1), `ok` is created, and `greenlight resume ID --workdir DIR --json` is timed from spawn to
//!    exit (stdout to a file, read afterwards to check that 999 steps were kept and one ran). Each
//!    sample has a fresh failed run; only the resume is timed. For the fixed process cost: the
//!    resume of a 1-step run, a `greenlight run` of a 1-step workflow, and a `resume` of a run
//!    that already succeeded (start, open the store, read the run, exit).
//!
//! Medians with [min – max] (and p99 for per-call latencies). The machine this was written on is
//! a noisy 2-core VM: other load shows up as noise, above all in the maxima. Informational only:
//! a bench never fails the build.

mod common;
use common::{Stats, loadavg, range, stats};

use std::ffi::OsStr;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use greenlight::engine::event::{CheckResult, Event, RunStatus, StepStatus, StepSummary};
use greenlight::store::{
    AttemptEnded, EventRecord, NewRun, RunEnded, StepDefinition, StepEnded, Store, StoreError,
};

const GREENLIGHT: &str = env!("CARGO_BIN_EXE_greenlight");
/// Steps of a simulated (and of the resumed) run.
const STEPS: usize = 1000;
/// Issue 5's target for the store's overhead per state change.
const TARGET_US: f64 = 1000.0;
/// `sync_comparison` runs each variant this many changes at a time, in turn.
const SYNC_BLOCK: usize = 50;

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let (sim_runs, e2e_runs, sync_changes) = if quick { (2, 3, 600) } else { (5, 7, 3000) };

    println!("greenlight run-store benchmarks (issue 5)");
    println!("  binary: {GREENLIGHT}");
    println!("  cores: {cores} (available_parallelism){}", if quick { "; --quick" } else { "" });
    println!("  load average at start: {}", loadavg());
    let root = tempfile::tempdir()?;
    let disk = filesystem(root.path());
    println!("  temp dirs under {} — {disk}", std::env::temp_dir().display());
    if disk.contains("tmpfs") {
        println!("  WARNING: that is a tmpfs, not a disk; the store figures below say little");
    }
    println!();

    // 1. Store overhead per state change.
    eprintln!("store: {sim_runs} simulated runs of {STEPS} steps per writer after 1 warm-up run");
    let cases = [
        ("a) 1 writer, back to back (one Store, as one runner; steps that take no time)", 1, false),
        ("a2) 1 writer, paced (sleeps 0.5–1.5 ms after each step, as while a step's process runs)", 1, true),
        (
            "b) 2 writers at once, back to back (two threads, two Stores on one file: two runners in one workspace)",
            2,
            false,
        ),
        ("b2) 2 writers at once, paced (each sleeps 0.5–1.5 ms after each step)", 2, true),
    ];
    let mut results = Vec::new();
    for (index, (label, count, paced)) in cases.into_iter().enumerate() {
        let workspace = root.path().join(format!("case-{index}"));
        std::fs::create_dir(&workspace)?;
        let measured = writers(&workspace, count, sim_runs, paced)?;
        eprintln!("  {}: {:.2} s", label.split(" (").next().unwrap_or(label), measured.wall.as_secs_f64());
        results.push((label, measured));
    }
    let sync = sync_comparison(&root.path().join("sync"), sync_changes)?;
    eprintln!("  synchronous comparison done");

    println!(
        "1. store overhead per state change — library API (greenlight::store::Store) on the disk above; one \
         call = one transaction = one state change"
    );
    println!(
        "   per writer: {sim_runs} simulated runs after 1 warm-up run, each: create_run with {STEPS} steps, \
         run_started, {STEPS} steps x 4 writes (the last step fails), run_finished; then a resume of it: \
         leftover_processes, begin_session, steps, run_started, {} step_kept events in one transaction, the last step's 4 writes, \
         run_finished",
        STEPS - 1
    );
    println!(
        "   every call timed on its own (Instant); times in µs (1 ms = 1000 µs); body = mean event body \
         written with the call (the engine's own Event, serialized), bytes"
    );
    for (label, measured) in &results {
        println!("\n   {label}; wall {:.2} s", measured.wall.as_secs_f64());
        print_table(&measured.timings);
        println!(
            "   WAL restarts after a full auto-checkpoint during the timed runs (the WAL header's counter): {}",
            measured.checkpoints.map_or("?".to_string(), |n| n.to_string())
        );
    }
    println!(
        "\n   with 2 writers, a write that finds the other runner's transaction open waits in the store's \
         busy handler, which retries after 20, 40, 80 ... µs, then every 1 ms (up to 10 s); SQLite's \
         default sleeps 1, 2, 5, 10 ... ms, which put the two-writer p99 over 1 ms"
    );

    println!(
        "\n   c) one state change, attempt_started's (three statements in one BEGIN IMMEDIATE ... COMMIT), \
         {sync_changes} times after {} untimed, each variant on a store file of its own, in interleaved \
         blocks of {SYNC_BLOCK}",
        sync_changes / 10
    );
    println!(
        "{:<72} {:>11} {:>9} {:>9} {:>10} {:>8}",
        "   connection", "median µs", "p99 µs", "max µs", "total ms", "> 1 ms"
    );
    for (label, d) in &sync {
        println!(
            "{:<72} {:>11.1} {:>9.1} {:>9.1} {:>10.1} {:>8}",
            format!("   {label}"),
            d.median,
            d.p99,
            d.max,
            d.total / 1e3,
            d.over
        );
    }
    println!(
        "\n   durability: the store runs synchronous = NORMAL in WAL mode (its doc comment): a commit does not \
         fsync, so a state change survives the runner being killed (the kernel holds the pages) but a \
         power cut can lose the last few. The FULL row is what an fsync per state change would cost on \
         this disk. With NORMAL, the fsyncs come at WAL auto-checkpoints: the commit that takes the WAL past \
         1000 pages copies it into the database and fsyncs both (compare the writes over 1 ms of a single \
         writer with its count of checkpoints, and the row without auto-checkpoint)."
    );
    println!(
        "   each writer's calls come from one thread; inside one runner, steps running at once share its one \
         connection behind a Mutex, so a call may also wait for the one before it (not measured here)."
    );
    println!("\n   verdict, target ≤ 1 ms per state change (the per-step writes):");
    for (label, measured) in &results {
        let d = dist(measured.timings.iter().filter(|t| t.0.per_step()).map(|t| t.1).collect());
        let v = |x: f64| if x <= TARGET_US { "PASS" } else { "MISS" };
        println!(
            "     {:<40} median {:>6.1} µs {}, p99 {:>7.1} µs {}, max {:>8.1} µs",
            label.split(" (").next().unwrap_or(label),
            d.median,
            v(d.median),
            d.p99,
            v(d.p99),
            d.max
        );
    }

    // 2. Time to resume a 1,000-step run.
    eprintln!("resume: {e2e_runs} samples per case after 1 warm-up");
    let e2e = EndToEnd { cache: tempfile::tempdir()?, root: root.path().join("e2e") };
    std::fs::create_dir(&e2e.root)?;
    let big = e2e.resume_case("big", &wide_with_final(STEPS), e2e_runs)?;
    eprintln!("  1,000-step resume: {:.1} ms", big.resume.median);
    let small = e2e.resume_case("small", &wide_with_final(1), e2e_runs)?;
    eprintln!("  1-step resume: {:.1} ms", small.resume.median);
    let run_one = e2e.run_case("one", e2e_runs)?;
    eprintln!("  1-step run: {:.1} ms", run_one.median);
    let done = e2e.succeeded_case(&big, e2e_runs)?;
    eprintln!("  resume of a succeeded run: {:.1} ms", done.median);

    println!(
        "\n2. time to resume a {STEPS}-step run — the bench-profile binary, from spawn to exit; {e2e_runs} \
         samples per case after 1 warm-up; median [min – max], ms"
    );
    println!(
        "   workflow: {} independent `true` steps + a final `test -f ok` needing them all (max_concurrency \
         16); each sample: rm ok, `greenlight run` (fails at the final step, exit 1), touch ok, then only \
         `greenlight resume ID --workdir DIR --json` is timed (stdout to a file; checked: {} step_kept, 1 \
         step run, succeeded)\n",
        STEPS - 1,
        STEPS - 1
    );
    println!(
        "{:<70} {:>26} {:>24} {:>22}",
        "   case", "wall (from outside), ms", "engine duration_ms", "final step started at"
    );
    println!("   {}", "-".repeat(142));
    let row = |label: &str, wall: Stats, engine: Option<Stats>, at: Option<Stats>| {
        println!(
            "{:<70} {:>26} {:>24} {:>22}",
            format!("   {label}"),
            range(wall, 1),
            engine.map_or("—".into(), |s| range(s, 0)),
            at.map_or("—".into(), |s| range(s, 0)),
        )
    };
    row(
        &format!("resume of a {STEPS}-step run ({} kept, 1 runs)", STEPS - 1),
        big.resume,
        Some(big.resume_engine),
        Some(big.final_at),
    );
    row(
        &format!("  for scale: its first run ({STEPS} steps, fails)"),
        big.first,
        Some(big.first_engine),
        None,
    );
    row(
        "resume of a 1-step run (0 kept, 1 runs)",
        small.resume,
        Some(small.resume_engine),
        Some(small.final_at),
    );
    row("run of a 1-step workflow (`true`)", run_one, None, None);
    row("resume of a run that already succeeded (nothing runs)", done, None, None);
    println!(
        "\n   engine duration_ms and `at` are the engine's own, in whole ms since its session started (after \
         the workflow is parsed and checked and `begin` has opened the session in the store)"
    );
    println!("   breakdown of the {STEPS}-step resume (medians; ms):");
    println!(
        "     process start, open the store, read the run, exit (resume of a succeeded run):   {:>7.1}",
        done.median
    );
    println!(
        "     outside the engine's clock (wall − duration_ms): resume {} — first run {}",
        range(big.resume_outside, 1),
        range(big.first_outside, 1)
    );
    println!(
        "       (start, parse and check the {STEPS}-step file, then for the resume: leftover_processes, \
         begin_session, steps; for the run: create_run; and exit)"
    );
    println!(
        "     keeping {} steps (`at` of the final step's step_started):                         {:>7.1}  \
         ({:.3} ms a kept step: kept_steps, a step_kept event into the store and onto stdout)",
        STEPS - 1,
        big.final_at.median,
        big.final_at.median / (STEPS - 1) as f64
    );
    println!(
        "     the final step and the end of the session (duration_ms − at):                    {:>7.1}",
        big.resume_engine.median - big.final_at.median
    );
    println!(
        "     against a resume of a 1-step run: {:.1} ms more for the {} kept steps ({:.3} ms each)",
        big.resume.median - small.resume.median,
        STEPS - 1,
        (big.resume.median - small.resume.median) / (STEPS - 1) as f64
    );
    println!("   target: none in issue 5 (reported only)");
    println!("\nload average at the end: {} (other load on the machine shows up as noise)", loadavg());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. The store through the library.

/// A store call the engine makes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Call {
    AttemptStarted,
    ProcessStarted,
    AttemptFinished,
    StepEnded,
    StepKept,
    CreateRun,
    RunStarted,
    RunFinished,
    BeginSession,
    LeftoverProcesses,
    Steps,
}

impl Call {
    const ALL: [Call; 11] = [
        Call::AttemptStarted,
        Call::ProcessStarted,
        Call::AttemptFinished,
        Call::StepEnded,
        Call::StepKept,
        Call::CreateRun,
        Call::RunStarted,
        Call::RunFinished,
        Call::BeginSession,
        Call::LeftoverProcesses,
        Call::Steps,
    ];

    fn label(self) -> String {
        match self {
            Call::AttemptStarted => "attempt_started (+ step_started event)".into(),
            Call::ProcessStarted => "process_started".into(),
            Call::AttemptFinished => "attempt_finished (+ step_finished event)".into(),
            Call::StepEnded => "step_ended (with output)".into(),
            Call::StepKept => format!("append_events ({} step_kept, resume)", STEPS - 1),
            Call::CreateRun => format!("create_run ({STEPS} steps + definition)"),
            Call::RunStarted => format!("event (run_started, {STEPS} names)"),
            Call::RunFinished => format!("run_finished (summary of {STEPS} steps)"),
            Call::BeginSession => "begin_session (resume)".into(),
            Call::LeftoverProcesses => "read: leftover_processes (resume)".into(),
            Call::Steps => format!("read: steps ({STEPS} rows, resume)"),
        }
    }

    /// Written once for each step (or kept step): what the ≤ 1 ms target is about.
    fn per_step(self) -> bool {
        matches!(self, Call::AttemptStarted | Call::ProcessStarted | Call::AttemptFinished | Call::StepEnded)
    }
}

/// One timed call: what, how long (µs), the event body it wrote (bytes).
type Timing = (Call, f64, usize);

/// What `writers` measured.
struct Measured {
    timings: Vec<Timing>,
    wall: Duration,
    /// WAL restarts during the timed runs, from the checkpoint counter in the WAL's header: one
    /// after each auto-checkpoint that copied the whole WAL into the database.
    checkpoints: Option<u32>,
}

/// `writers` threads at once, each with a `Store` of its own on `workspace`'s store, each
/// simulating one warm-up run and then `runs` timed ones. All timings together.
fn writers(workspace: &Path, writers: usize, runs: usize, paced: bool) -> anyhow::Result<Measured> {
    // Create the store (and its schema) before the writers start, as a first run would have.
    let wal = {
        let store = Store::open_or_create(workspace)?;
        let mut wal = store.path().as_os_str().to_owned();
        wal.push("-wal");
        PathBuf::from(wal)
    };
    let barrier = Barrier::new(writers);
    let start = Instant::now();
    let results: Vec<anyhow::Result<(Vec<Timing>, Option<u32>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (barrier, wal) = (&barrier, &wal);
                scope.spawn(move || -> anyhow::Result<(Vec<Timing>, Option<u32>)> {
                    let store = Store::open_or_create(workspace)?;
                    let mut warm_up = Vec::new();
                    barrier.wait();
                    let mut pace = paced.then_some(Pace(0x9e37_79b9_7f4a_7c15 ^ w as u64));
                    simulate(&store, workspace, &format!("w{w}-warm"), &mut pace, &mut warm_up)?;
                    barrier.wait();
                    let before = wal_checkpoints(wal);
                    let mut timings = Vec::new();
                    for run in 0..runs {
                        barrier.wait();
                        simulate(&store, workspace, &format!("w{w}-{run:02}"), &mut pace, &mut timings)?;
                    }
                    barrier.wait();
                    let after = wal_checkpoints(wal);
                    let checkpoints = before.zip(after).map(|(b, a)| a.wrapping_sub(b));
                    Ok((timings, if w == 0 { checkpoints } else { None }))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a writer panicked")).collect()
    });
    let wall = start.elapsed();
    let mut measured = Measured { timings: Vec::new(), wall, checkpoints: None };
    for result in results {
        let (timings, checkpoints) = result?;
        measured.timings.extend(timings);
        measured.checkpoints = measured.checkpoints.or(checkpoints);
    }
    Ok(measured)
}

/// The checkpoint sequence number in the header of the WAL file `wal` (big-endian, bytes 12–16).
fn wal_checkpoints(wal: &Path) -> Option<u32> {
    let mut header = [0u8; 16];
    std::fs::File::open(wal).ok()?.read_exact(&mut header).ok()?;
    Some(u32::from_be_bytes([header[12], header[13], header[14], header[15]]))
}

/// Time one call.
fn timed<T>(
    timings: &mut Vec<Timing>,
    call: Call,
    body: usize,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    let value = f()?;
    timings.push((call, start.elapsed().as_secs_f64() * 1e6, body));
    Ok(value)
}

fn record<'a>(kind: &'a str, body: &'a str) -> EventRecord<'a> {
    EventRecord { kind, body }
}

fn json(event: &Event) -> String {
    serde_json::to_string(event).expect("events serialize")
}

/// Sleeps 0.5–1.5 ms (xorshift), so that paced writers do not fall into step with each other.
struct Pace(u64);

impl Pace {
    fn sleep(&mut self) {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        std::thread::sleep(Duration::from_micros(500 + self.0 % 1000));
    }
}

/// One run of `STEPS` steps as the engine records it, then a resume of it. With a `pace`, the
/// writer sleeps after each step that runs (while its process would run).
fn simulate(
    store: &Store,
    workspace: &Path,
    tag: &str,
    pace: &mut Option<Pace>,
    timings: &mut Vec<Timing>,
) -> anyhow::Result<()> {
    let run_id = format!("20260101-000000-{tag}");
    let run_dir = workspace.join(".greenlight").join("runs").join(&run_id);
    let names: Vec<String> = (0..STEPS).map(|i| format!("s{i:04}")).collect();
    let definitions: Vec<StepDefinition> = names
        .iter()
        .enumerate()
        .map(|(i, name)| StepDefinition { name: name.clone(), definition_hash: format!("{i:064x}") })
        .collect();
    let definition = wide_with_final(STEPS);
    let new = NewRun {
        id: run_id.clone(),
        name: format!("bench-resume-{STEPS}"),
        file: "workflow.yaml".into(),
        file_path: workspace.join("workflow.yaml"),
        selected: None,
        definition: definition.clone(),
        definition_hash: format!("{:064x}", definition.len()),
        vars: r#"{"target":"x86_64-unknown-linux-gnu"}"#.into(),
        max_concurrency: None,
        workspace: workspace.to_path_buf(),
        run_dir: run_dir.clone(),
        started_at: unix_millis(),
        reused_from: None,
        grants: None,
        component_sha256: None,
    };
    let pid = std::process::id();
    let run = run_id.as_str();
    timed(timings, Call::CreateRun, definition.len(), || store.create_run(&new, &definitions, pid))?;
    let started = |session| Event::RunStarted {
        run_id: run_id.clone(),
        workflow: new.name.clone(),
        file: new.file.clone(),
        workspace: workspace.to_path_buf(),
        run_dir: run_dir.clone(),
        steps: names.clone(),
        max_concurrency: 16,
        started_at: unix_millis(),
        session,
    };
    let body = json(&started(1));
    timed(timings, Call::RunStarted, body.len(), || store.event(run, 1, record("run_started", &body)))?;

    let mut summary = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let fails = i == STEPS - 1;
        summary.push(step(store, run, 1, name, &run_dir, fails, i as i32, timings)?);
        if let Some(pace) = pace.as_mut() {
            pace.sleep();
        }
    }
    let finished = |status, summary: Vec<StepSummary>| Event::RunFinished {
        status,
        at: 2400,
        duration_ms: 2400,
        summary,
        blocked_artifact: None,
        commit: None,
        reason: None,
    };
    let body = json(&finished(RunStatus::Failed, summary.clone()));
    let ended = RunEnded { status: "failed".into(), ..RunEnded::default() };
    timed(timings, Call::RunFinished, body.len(), || {
        store.run_finished(run, 1, &ended, unix_millis(), record("run_finished", &body))
    })?;

    // The resume, as `begin` and `keep` record it.
    let leftover = timed(timings, Call::LeftoverProcesses, 0, || store.leftover_processes(run))?;
    ensure!(leftover.is_empty(), "every process was recorded as ended");
    let session = timed(timings, Call::BeginSession, 0, || store.begin_session(run, pid, None))?;
    let rows = timed(timings, Call::Steps, 0, || store.steps(run))?;
    ensure!(rows.len() == STEPS, "{} step rows", rows.len());
    let body = json(&started(session));
    timed(timings, Call::RunStarted, body.len(), || store.event(run, session, record("run_started", &body)))?;
    let bodies: Vec<String> = names
        .iter()
        .take(STEPS - 1)
        .enumerate()
        .map(|(i, name)| {
            json(&Event::StepKept { step: name.clone(), at: i as u64 / 100, from_run: None, attempts: 1 })
        })
        .collect();
    let records: Vec<EventRecord> = bodies.iter().map(|body| record("step_kept", body)).collect();
    let size = bodies.iter().map(String::len).sum();
    timed(timings, Call::StepKept, size, || store.append_events(run, session, &records))?;
    let last = &names[STEPS - 1];
    let again = step(store, run, session, last, &run_dir, false, STEPS as i32, timings)?;
    if let Some(pace) = pace.as_mut() {
        pace.sleep();
    }
    summary[STEPS - 1] = again;
    let body = json(&finished(RunStatus::Succeeded, summary));
    let ended = RunEnded { status: "succeeded".into(), ..RunEnded::default() };
    timed(timings, Call::RunFinished, body.len(), || {
        store.run_finished(run, session, &ended, unix_millis(), record("run_finished", &body))
    })?;
    Ok(())
}

/// One step's five writes: attempt started, process group started and ended, attempt finished,
/// step ended. Events and values as the engine makes them for a `cargo test`-like step.
#[allow(clippy::too_many_arguments)]
fn step(
    store: &Store,
    run: &str,
    session: u32,
    name: &str,
    run_dir: &Path,
    fails: bool,
    n: i32,
    timings: &mut Vec<Timing>,
) -> anyhow::Result<StepSummary> {
    let attempt = session; // the failed last step runs again as attempt 2
    let what = format!("cargo test -p crate-{n} --lib -- --test-threads 2");
    let log = run_dir.join("steps").join(name).join(format!("attempt-{attempt}.log"));
    let at = n as u64 * 2;
    let body = json(&Event::StepStarted {
        step: name.into(),
        attempt,
        at,
        what: what.clone(),
        log: Some(log.clone()),
    });
    timed(timings, Call::AttemptStarted, body.len(), || {
        store.attempt_started(
            run,
            session,
            name,
            attempt,
            &what,
            Some(&log),
            unix_millis(),
            record("step_started", &body),
        )
    })?;
    timed(timings, Call::ProcessStarted, 0, || {
        store.process_started(run, name, &what, 400_000 + n, Some(123_456_789 + n as u64))
    })?;

    let (status, exit_code, reason, checks, tail) = if fails {
        (
            StepStatus::Failed,
            Some(101),
            Some("exited with code 101".to_string()),
            vec![CheckResult {
                check: "exit_code: 0".into(),
                passed: false,
                detail: "exit code 101".into(),
                evidence: None,
            }],
            Some(format!(
                "test tests::parses_{n} ... FAILED\n\nfailures:\n    tests::parses_{n}\n\ntest result: FAILED. \
                 41 passed; 1 failed; 0 ignored\nerror: test failed, to rerun pass `-p crate-{n} --lib`"
            )),
        )
    } else {
        (
            StepStatus::Succeeded,
            Some(0),
            None,
            vec![
                CheckResult {
                    check: "exit_code: 0".into(),
                    passed: true,
                    detail: "exit code 0".into(),
                    evidence: None,
                },
                CheckResult {
                    check: "output_contains: \"test result: ok\"".into(),
                    passed: true,
                    detail: "found".into(),
                    evidence: None,
                },
            ],
            None,
        )
    };
    let duration_ms = 1800 + n as u64 % 400;
    let body = json(&Event::StepFinished {
        step: name.into(),
        attempt,
        at: at + duration_ms,
        status,
        duration_ms,
        exit_code,
        reason: reason.clone(),
        checks: checks.clone(),
        tail,
        usage: None,
        retrying: false,
    });
    let ended = AttemptEnded {
        status: status.as_str().into(),
        exit_code,
        reason: reason.clone(),
        checks: serde_json::to_string(&checks)?,
        duration_ms,
    };
    timed(timings, Call::AttemptFinished, body.len(), || {
        store.attempt_finished(
            run,
            session,
            name,
            attempt,
            &ended,
            unix_millis(),
            record("step_finished", &body),
        )
    })?;

    let output = (!fails).then(|| {
        format!(
            "running 42 tests\n{}\ntest result: ok. 42 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; \
             finished in 0.31s\n",
            ".".repeat(42)
        )
    });
    let summary = StepSummary {
        step: name.into(),
        status,
        attempts: attempt,
        duration_ms,
        exit_code,
        reason,
        usage: None,
        log: Some(log.clone()),
    };
    let ended = StepEnded {
        status: status.as_str().into(),
        attempts: attempt,
        duration_ms,
        exit_code,
        reason: summary.reason.clone(),
        output,
        log: Some(log),
        usage: None,
        reused_from: None,
    };
    timed(timings, Call::StepEnded, 0, || store.step_ended(run, session, name, &ended, unix_millis(), None))?;
    Ok(summary)
}

/// How `sync_comparison` writes: through the store, or through a connection of its own.
#[derive(Clone, Copy)]
enum Via {
    Store,
    Own { synchronous: &'static str, cached: bool, checkpoint: bool },
}

/// `attempt_started`'s transaction, `changes` times after `changes / 10` untimed, through the
/// store itself and through connections of this bench's own with synchronous NORMAL (as the
/// store) and FULL; each on a store file of its own, interleaved so that noise hits all alike.
fn sync_comparison(dir: &Path, changes: usize) -> anyhow::Result<Vec<(String, Dist)>> {
    std::fs::create_dir(dir)?;
    let own = |synchronous, cached, checkpoint| Via::Own { synchronous, cached, checkpoint };
    let variants = [
        ("Store::attempt_started (the store itself, for reference)", Via::Store),
        ("own connection, synchronous = NORMAL, as the store", own("NORMAL", false, true)),
        ("own connection, NORMAL, statements cached (prepare_cached)", own("NORMAL", true, true)),
        ("own connection, NORMAL, no WAL auto-checkpoint", own("NORMAL", false, false)),
        ("own connection, synchronous = FULL (an fsync a commit)", own("FULL", false, true)),
    ];
    let warm_up = changes / 10;
    let names: Vec<String> = (0..warm_up + changes).map(|i| format!("s{i:04}")).collect();
    let run_id = "20260101-000000-sync";
    let mut setups = Vec::new();
    for (index, (_, connection)) in variants.iter().enumerate() {
        let workspace = dir.join(format!("variant-{index}"));
        std::fs::create_dir(&workspace)?;
        let store = Store::open_or_create(&workspace)?;
        let definitions: Vec<StepDefinition> = names
            .iter()
            .map(|name| StepDefinition { name: name.clone(), definition_hash: "0".repeat(64) })
            .collect();
        let new = NewRun {
            id: run_id.into(),
            name: "sync".into(),
            file: "workflow.yaml".into(),
            file_path: workspace.join("workflow.yaml"),
            selected: None,
            definition: wide_with_final(names.len()),
            definition_hash: "0".repeat(64),
            vars: "{}".into(),
            max_concurrency: None,
            workspace: workspace.clone(),
            run_dir: workspace.join(".greenlight/runs").join(run_id),
            started_at: unix_millis(),
            reused_from: None,
            grants: None,
            component_sha256: None,
        };
        store.create_run(&new, &definitions, std::process::id())?;
        let conn = match connection {
            Via::Store => None,
            Via::Own { synchronous, cached, checkpoint } => {
                let conn = rusqlite::Connection::open(store.path())?;
                conn.busy_timeout(Duration::from_secs(10))?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(None, "synchronous", synchronous)?;
                conn.pragma_update(None, "foreign_keys", "ON")?;
                if !*checkpoint {
                    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
                }
                Some((conn, *cached))
            }
        };
        setups.push((store, conn, new.run_dir, Vec::with_capacity(changes)));
    }
    for (block, first) in (0..names.len()).step_by(SYNC_BLOCK).enumerate() {
        for turn in 0..setups.len() {
            let (store, conn, run_dir, micros) = &mut setups[(block + turn) % variants.len()];
            for (i, name) in names.iter().enumerate().skip(first).take(SYNC_BLOCK) {
                let what = format!("cargo test -p crate-{i} --lib -- --test-threads 2");
                let log = run_dir.join("steps").join(name).join("attempt-1.log");
                let body = json(&Event::StepStarted {
                    step: name.clone(),
                    attempt: 1,
                    at: i as u64,
                    what: what.clone(),
                    log: Some(log.clone()),
                });
                let at = unix_millis();
                let start = Instant::now();
                match conn {
                    None => store.attempt_started(
                        run_id,
                        1,
                        name,
                        1,
                        &what,
                        Some(&log),
                        at,
                        record("step_started", &body),
                    )?,
                    Some((conn, cached)) => {
                        let log = log.display().to_string();
                        let at = at as i64;
                        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                        // The statements of `Store::attempt_started`.
                        let statements: [(&str, &[&dyn rusqlite::ToSql]); 3] = [
                        (
                            "INSERT OR REPLACE INTO attempts (run_id, step, attempt, session, what, log, started_at, status)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running')",
                            &[&run_id, name, &1, &1, &what, &log, &at],
                        ),
                        (
                            "UPDATE steps SET status = 'running', attempts = max(attempts, ?3),
                                 started_at = coalesce(started_at, ?4), finished_at = NULL
                             WHERE run_id = ?1 AND name = ?2",
                            &[&run_id, name, &1, &at],
                        ),
                        (
                            "INSERT INTO events (run_id, session, kind, body) VALUES (?1, ?2, ?3, ?4)",
                            &[&run_id, &1, &"step_started", &body],
                        ),
                    ];
                        for (sql, params) in statements {
                            if *cached {
                                tx.prepare_cached(sql)?.execute(params)?;
                            } else {
                                tx.execute(sql, params)?;
                            }
                        }
                        tx.commit()?;
                    }
                }
                if i >= warm_up {
                    micros.push(start.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
    }
    Ok(variants
        .iter()
        .zip(setups)
        .map(|((label, _), (.., micros))| (label.to_string(), dist(micros)))
        .collect())
}

/// Median, p99, max and total of per-call latencies (µs).
#[derive(Clone, Copy)]
struct Dist {
    n: usize,
    /// How many took longer than the target.
    over: usize,
    median: f64,
    p99: f64,
    max: f64,
    total: f64,
}

fn dist(mut v: Vec<f64>) -> Dist {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let p99 = ((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1;
    let over = v.iter().filter(|us| **us > TARGET_US).count();
    Dist { n, over, median: v[n / 2], p99: v[p99], max: v[n - 1], total: v.iter().sum() }
}

/// How many per-step writes took longer than the target, and by how much.
fn over_target(timings: &[Timing]) {
    let per_step: Vec<f64> = timings.iter().filter(|t| t.0.per_step()).map(|t| t.1).collect();
    let within = |low: f64, high: f64| per_step.iter().filter(|us| **us > low && **us <= high).count();
    let over = within(TARGET_US, f64::INFINITY);
    println!(
        "   per-step writes over 1 ms: {over} of {} ({:.2}%); of those, 1–2 ms: {}, 2–4 ms: {}, 4–8 ms: {}, \
         8–16 ms: {}, 16–64 ms: {}, over 64 ms: {}",
        per_step.len(),
        100.0 * over as f64 / per_step.len().max(1) as f64,
        within(1e3, 2e3),
        within(2e3, 4e3),
        within(4e3, 8e3),
        within(8e3, 16e3),
        within(16e3, 64e3),
        within(64e3, f64::INFINITY),
    );
}

fn print_table(timings: &[Timing]) {
    println!(
        "{:<50} {:>7} {:>7} {:>10} {:>9} {:>9} {:>10}  verdict (≤ 1 ms: median / p99)",
        "   call", "n", "body B", "median µs", "p99 µs", "max µs", "total ms"
    );
    println!("   {}", "-".repeat(142));
    let line = |label: &str, picked: Vec<&Timing>, verdict: bool| {
        if picked.is_empty() {
            return;
        }
        let body = picked.iter().map(|t| t.2).sum::<usize>() / picked.len();
        let d = dist(picked.iter().map(|t| t.1).collect());
        let verdict = if verdict {
            let v = |x: f64| if x <= TARGET_US { "PASS" } else { "MISS" };
            format!("{} / {}", v(d.median), v(d.p99))
        } else {
            String::new()
        };
        println!(
            "{:<50} {:>7} {:>7} {:>10.1} {:>9.1} {:>9.1} {:>10.1}  {verdict}",
            format!("   {label}"),
            d.n,
            if body == 0 { "—".to_string() } else { body.to_string() },
            d.median,
            d.p99,
            d.max,
            d.total / 1e3
        );
    };
    for call in Call::ALL.iter().filter(|c| c.per_step()) {
        line(&call.label(), timings.iter().filter(|t| t.0 == *call).collect(), false);
    }
    line(
        "ALL PER-STEP STATE CHANGES (the 4 above)",
        timings.iter().filter(|t| t.0.per_step()).collect(),
        true,
    );
    println!("   once a run or a resume:");
    for call in Call::ALL.iter().filter(|c| !c.per_step()) {
        line(&call.label(), timings.iter().filter(|t| t.0 == *call).collect(), false);
    }
    over_target(timings);
    let writes: Vec<&Timing> =
        timings.iter().filter(|t| !matches!(t.0, Call::LeftoverProcesses | Call::Steps)).collect();
    let total_ms = writes.iter().map(|t| t.1).sum::<f64>() / 1e3;
    println!(
        "   all writes: {} state changes, {total_ms:.1} ms in the store in all, {:.1} µs each on average",
        writes.len(),
        total_ms * 1e3 / writes.len().max(1) as f64
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Resume, end to end.

struct EndToEnd {
    cache: tempfile::TempDir,
    root: PathBuf,
}

/// A resume case: the failed first runs and the timed resumes.
struct ResumeCase {
    workspace: PathBuf,
    last_run: String,
    first: Stats,
    first_engine: Stats,
    resume: Stats,
    resume_engine: Stats,
    /// `at` of the final step's `step_started` in the resume.
    final_at: Stats,
    /// Wall time outside the engine's clock (wall − duration_ms), of the resume and the first run.
    resume_outside: Stats,
    first_outside: Stats,
}

/// One finished greenlight process.
struct Finished {
    code: i32,
    wall_ms: f64,
    events: Vec<serde_json::Value>,
}

impl Finished {
    fn count(&self, kind: &str) -> usize {
        self.events.iter().filter(|e| e["event"] == kind).count()
    }

    fn last(&self) -> Option<&serde_json::Value> {
        self.events.last()
    }

    fn duration_ms(&self) -> anyhow::Result<f64> {
        let last = self.last().context("no events")?;
        ensure!(last["event"] == "run_finished", "last event: {last}");
        Ok(last["duration_ms"].as_u64().context("run_finished without duration_ms")? as f64)
    }
}

impl EndToEnd {
    /// `greenlight COMMAND TARGET --workdir WORKSPACE --json`; stdout to a file, read afterwards.
    fn greenlight(&self, command: &str, target: &OsStr, workspace: &Path) -> anyhow::Result<Finished> {
        let mut out = tempfile::tempfile()?;
        let mut err = tempfile::tempfile()?;
        let start = Instant::now();
        let status = Command::new(GREENLIGHT)
            .arg(command)
            .arg(target)
            .arg("--workdir")
            .arg(workspace)
            .arg("--json")
            .env("GREENLIGHT_CACHE_DIR", self.cache.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(err.try_clone()?)
            .status()
            .context("running greenlight")?;
        let wall_ms = start.elapsed().as_secs_f64() * 1e3;
        let mut text = String::new();
        out.rewind()?;
        out.read_to_string(&mut text)?;
        let Some(code) = status.code() else {
            let mut stderr = String::new();
            err.rewind()?;
            err.read_to_string(&mut stderr)?;
            bail!("greenlight was killed ({status}):\n{stderr}");
        };
        let events = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        Ok(Finished { code, wall_ms, events })
    }

    /// `runs` + 1 times (the first untimed): a fresh failed run of `yaml`, then the timed resume.
    fn resume_case(&self, name: &str, yaml: &str, runs: usize) -> anyhow::Result<ResumeCase> {
        let workspace = self.root.join(name);
        std::fs::create_dir(&workspace)?;
        let file = workspace.join("workflow.yaml");
        std::fs::write(&file, yaml)?;
        let ok = workspace.join("ok");
        let steps = yaml.matches("\n  - name: ").count();
        let (mut first, mut first_engine, mut resume, mut resume_engine, mut final_at) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut first_outside, mut resume_outside) = (Vec::new(), Vec::new());
        let mut last_run = String::new();
        for sample in 0..=runs {
            let _ = std::fs::remove_file(&ok);
            let ran = self.greenlight("run", file.as_os_str(), &workspace)?;
            ensure!(ran.code == 1, "the first run should fail (exit 1), got exit {}", ran.code);
            ensure!(
                ran.count("step_finished") == steps,
                "the first run ran {} steps",
                ran.count("step_finished")
            );
            let run_id = ran.events.first().and_then(|e| e["run_id"].as_str()).context("no run_started")?;
            last_run = run_id.to_string();
            std::fs::write(&ok, "")?;
            let resumed = self.greenlight("resume", OsStr::new(run_id), &workspace)?;
            ensure!(resumed.code == 0, "the resume should succeed, got exit {}", resumed.code);
            ensure!(
                resumed.count("step_kept") == steps - 1 && resumed.count("step_started") == 1,
                "the resume kept {} steps and started {}",
                resumed.count("step_kept"),
                resumed.count("step_started")
            );
            ensure!(resumed.last().is_some_and(|e| e["status"] == "succeeded"), "the resume did not succeed");
            if sample == 0 {
                continue; // warm-up
            }
            first.push(ran.wall_ms);
            first_engine.push(ran.duration_ms()?);
            first_outside.push(ran.wall_ms - ran.duration_ms()?);
            resume.push(resumed.wall_ms);
            resume_engine.push(resumed.duration_ms()?);
            resume_outside.push(resumed.wall_ms - resumed.duration_ms()?);
            let started =
                resumed.events.iter().find(|e| e["event"] == "step_started").context("step_started")?;
            final_at.push(started["at"].as_u64().context("step_started without at")? as f64);
        }
        Ok(ResumeCase {
            workspace,
            last_run,
            first: stats(first),
            first_engine: stats(first_engine),
            resume: stats(resume),
            resume_engine: stats(resume_engine),
            final_at: stats(final_at),
            resume_outside: stats(resume_outside),
            first_outside: stats(first_outside),
        })
    }

    /// `greenlight run` of a 1-step `true` workflow, `runs` times after a warm-up.
    fn run_case(&self, name: &str, runs: usize) -> anyhow::Result<Stats> {
        let workspace = self.root.join(name);
        std::fs::create_dir(&workspace)?;
        let file = workspace.join("workflow.yaml");
        std::fs::write(&file, "version: 1\nname: bench-one\nsteps:\n  - name: only\n    run: \"true\"\n")?;
        let mut walls = Vec::new();
        for sample in 0..=runs {
            let ran = self.greenlight("run", file.as_os_str(), &workspace)?;
            ensure!(ran.code == 0, "the 1-step run failed (exit {})", ran.code);
            if sample > 0 {
                walls.push(ran.wall_ms);
            }
        }
        Ok(stats(walls))
    }

    /// `greenlight resume` of `case`'s last run, which succeeded: it opens the store, reads the run
    /// and exits 0 without running anything.
    fn succeeded_case(&self, case: &ResumeCase, runs: usize) -> anyhow::Result<Stats> {
        let mut walls = Vec::new();
        for sample in 0..=runs {
            let ran = self.greenlight("resume", OsStr::new(&case.last_run), &case.workspace)?;
            ensure!(ran.code == 0 && ran.events.is_empty(), "resume of a succeeded run: exit {}", ran.code);
            if sample > 0 {
                walls.push(ran.wall_ms);
            }
        }
        Ok(stats(walls))
    }
}

/// `n - 1` independent `true` steps and a final `test -f ok` needing them all (just the final
/// step for `n == 1`).
fn wide_with_final(n: usize) -> String {
    let mut yaml = format!("version: 1\nname: bench-resume-{n}\nmax_concurrency: 16\nsteps:\n");
    let middle: Vec<String> = (1..n).map(|i| format!("w{i:04}")).collect();
    for name in &middle {
        yaml.push_str(&format!("  - name: {name}\n    run: \"true\"\n"));
    }
    yaml.push_str("  - name: final\n    run: \"test -f ok\"\n");
    if !middle.is_empty() {
        yaml.push_str(&format!("    needs: [{}]\n", middle.join(", ")));
    }
    yaml
}

// ---------------------------------------------------------------------------------------------

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The file system `path` is on, from `/proc/self/mounts` (the longest mount point above it).
fn filesystem(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let best = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point).then_some((device, point, kind))
        })
        .max_by_key(|(_, point, _)| point.len());
    match best {
        Some((device, point, kind)) => format!("{kind} on {device} (mounted at {point})"),
        None => "file system unknown".into(),
    }
}
