//! The recorded runs of a workspace: `greenlight runs`, `show`, `logs` and `cancel`.

use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use clap::Args;
use serde_json::{Value, json};

use super::exit;
use crate::engine::flow::Directive;
use crate::engine::policy::Trust;
use crate::report::{duration, text};
use crate::store::{AttemptRow, RunRow, RunnerLock, Store};

/// How long `cancel` waits for the runner to stop before saying so.
const CANCEL_WAIT: Duration = Duration::from_secs(30);
/// How often `logs --follow` and `cancel` look again.
const POLL: Duration = Duration::from_millis(200);

#[derive(Args)]
pub struct RunsArgs {
    /// The workspace (default: the current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    workdir: PathBuf,
    /// Print a JSON array of runs instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    /// The run: its id, a unique prefix of it, or `latest`.
    run: String,
    #[arg(long, value_name = "DIR", default_value = ".")]
    workdir: PathBuf,
    /// Print the run, its steps and their attempts as one JSON object.
    #[arg(long, conflicts_with = "events")]
    json: bool,
    /// Print the run's recorded events, one JSON object per line (as `run --json` printed them).
    #[arg(long)]
    events: bool,
}

#[derive(Args)]
pub struct LogsArgs {
    /// The run: its id, a unique prefix of it, or `latest`.
    run: String,
    /// Only this step's logs (its attempts and repair rounds).
    step: Option<String>,
    #[arg(long, value_name = "DIR", default_value = ".")]
    workdir: PathBuf,
    /// Keep printing as the run goes on, until it ends.
    #[arg(long, short)]
    follow: bool,
}

#[derive(Args)]
pub struct CancelArgs {
    /// The run: its id, a unique prefix of it, or `latest`.
    run: String,
    #[arg(long, value_name = "DIR", default_value = ".")]
    workdir: PathBuf,
}

fn open(workdir: &Path) -> anyhow::Result<Store> {
    Ok(Store::open_existing(&super::workdir(workdir)?)?)
}

/// The status a person should see: a run recorded as running whose runner is gone was
/// interrupted (killed, or the machine went down).
fn status_of(run: &RunRow) -> String {
    if run.status == "running" && !RunnerLock::is_held(&run.run_dir) {
        "interrupted".to_string()
    } else {
        run.status.clone()
    }
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn took(run: &RunRow) -> u64 {
    run.finished_at.unwrap_or_else(now_millis).saturating_sub(run.started_at)
}

fn timestamp(millis: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
}

fn run_json(run: &RunRow, steps: Option<Value>) -> Value {
    let mut value = serde_json::to_value(run).unwrap_or_default();
    value["status"] = json!(status_of(run));
    value["recorded_status"] = json!(run.status);
    value["duration_ms"] = json!(took(run));
    // `null` for a trusted run; the grants in force for an untrusted one.
    value["grants"] = run.grants.as_deref().and_then(|g| serde_json::from_str(g).ok()).unwrap_or(Value::Null);
    if let Some(steps) = steps {
        value["steps"] = steps;
    }
    value
}

/// `greenlight runs`: newest first.
pub fn runs(args: RunsArgs) -> anyhow::Result<u8> {
    let store = open(&args.workdir)?;
    let runs = store.runs()?;
    if args.json {
        let list: Vec<Value> = runs.iter().map(|r| run_json(r, None)).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(exit::PASS);
    }
    if runs.is_empty() {
        println!("no runs recorded yet");
        return Ok(exit::PASS);
    }
    let rows: Vec<[String; 5]> = runs
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                text::line(&r.name).into_owned(),
                status_of(r),
                timestamp(r.started_at),
                duration(took(r)),
            ]
        })
        .collect();
    print_table(&["run", "workflow", "status", "started", "took"], &rows);
    Ok(exit::PASS)
}

fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `greenlight show RUN`.
pub fn show(args: ShowArgs) -> anyhow::Result<u8> {
    let store = open(&args.workdir)?;
    let run = store.run(&store.resolve(&args.run)?)?;
    if args.events {
        let mut out = std::io::stdout().lock();
        for (_, body) in store.events(&run.id, 0)? {
            writeln!(out, "{body}")?;
        }
        return Ok(exit::PASS);
    }
    let steps = store.steps(&run.id)?;
    let attempts = store.attempts(&run.id)?;
    let mine = |step: &str| attempts.iter().filter(|a| a.step == step).collect::<Vec<_>>();
    if args.json {
        let steps: Vec<Value> = steps
            .iter()
            .map(|s| {
                let mut value = serde_json::to_value(s).unwrap_or_default();
                value["usage"] =
                    s.usage.as_deref().and_then(|u| serde_json::from_str(u).ok()).unwrap_or(Value::Null);
                value["attempt_list"] = mine(&s.name).into_iter().map(attempt_json).collect();
                value
            })
            .collect();
        let mut value = run_json(&run, Some(Value::Array(steps)));
        value["decisions"] = store
            .decisions(&run.id)?
            .into_iter()
            .map(|d| {
                let directives: Value = serde_json::from_str(&d.directives).unwrap_or_default();
                json!({ "seq": d.seq, "session": d.session, "after": d.step, "directives": directives })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(exit::PASS);
    }

    let l = |t: &str| text::line(t).into_owned();
    println!("run       {}", run.id);
    println!("workflow  {} ({})", l(&run.name), l(&run.file_path.display().to_string()));
    let mut status = status_of(&run);
    if let Some(reason) = &run.reason {
        status += &format!(": {}", l(reason));
    }
    println!("status    {status}");
    println!(
        "started   {}, took {}{}",
        timestamp(run.started_at),
        duration(took(&run)),
        if run.sessions > 1 { format!(", {} sessions (resumed)", run.sessions) } else { String::new() }
    );
    println!("workspace {}", l(&run.workspace.display().to_string()));
    if let Some(from) = &run.reused_from {
        println!("reused    results from run {from}");
    }
    if let Some(commit) = &run.commit {
        println!("commit    {commit}");
    }
    if let Some(artifact) = &run.blocked_artifact {
        println!("blocked   {}", l(&artifact.display().to_string()));
    }
    println!("definition sha256 {}", run.definition_hash);
    if let Some(sha) = &run.component_sha256 {
        println!("component sha256 {sha} (the workflow component that planned it)");
    }
    for line in grant_lines(run.grants.as_deref()) {
        println!("{}", l(&line));
    }
    let decisions = store.decisions(&run.id)?;
    if !decisions.is_empty() {
        println!("decisions (what the workflow component's decide answered, in order):");
        for decision in &decisions {
            let Ok(directives) = serde_json::from_str::<Vec<Directive>>(&decision.directives) else {
                println!("  after {}: {}", l(&decision.step), l(&decision.directives));
                continue;
            };
            for directive in directives {
                println!(
                    "  after {}: {} (session {})",
                    l(&decision.step),
                    l(&directive.describe()),
                    decision.session
                );
            }
        }
    }
    println!();
    for step in &steps {
        let mut head = format!("{}  {}", l(&step.name), step.status);
        if step.attempts > 0 {
            head += &format!(", {} attempt{}", step.attempts, if step.attempts == 1 { "" } else { "s" });
        }
        if step.repairs > 0 {
            head += &format!(", {} repair round{}", step.repairs, if step.repairs == 1 { "" } else { "s" });
        }
        if let Some(ms) = step.duration_ms.filter(|_| step.status != "pending") {
            head += &format!(", {}", duration(ms));
        }
        if let Some(code) = step.exit_code {
            head += &format!(", exit {code}");
        }
        if let Some(from) = &step.reused_from {
            head += &format!(" (reused from run {from})");
        }
        println!("{head}");
        if let Some(reason) = &step.reason {
            println!("  why: {}", l(reason));
        }
        for attempt in mine(&step.name) {
            let mut line = format!("  attempt {}: {}", attempt.attempt, attempt.status);
            if let Some(ms) = attempt.duration_ms {
                line += &format!(" in {}", duration(ms));
            }
            if let Some(log) = &attempt.log {
                line += &format!("  log: {}", l(&log.display().to_string()));
            }
            println!("{line}");
            for check in checks_of(attempt) {
                let mark = if check["passed"] == true { "pass" } else { "FAIL" };
                println!(
                    "    {mark} {}: {}",
                    l(check["check"].as_str().unwrap_or_default()),
                    l(check["detail"].as_str().unwrap_or_default())
                );
            }
        }
    }
    Ok(exit::PASS)
}

fn checks_of(attempt: &AttemptRow) -> Vec<Value> {
    attempt.checks.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default()
}

fn attempt_json(attempt: &AttemptRow) -> Value {
    let mut value = serde_json::to_value(attempt).unwrap_or_default();
    value["checks"] = Value::Array(checks_of(attempt));
    value
}

/// `greenlight logs RUN [STEP] [--follow]`: every log of the run (or of one step) in the order
/// they started — attempts and repair rounds — each under a `==> STEP ... <==` header.
pub fn logs(args: LogsArgs) -> anyhow::Result<u8> {
    let store = open(&args.workdir)?;
    let run = store.run(&store.resolve(&args.run)?)?;
    if let Some(step) = &args.step
        && !store.steps(&run.id)?.iter().any(|s| &s.name == step)
    {
        bail!("run {} has no step `{step}`; `greenlight show {}` lists its steps", run.id, run.id);
    }
    let escape = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut printed: Vec<(PathBuf, u64)> = Vec::new();
    let mut last_event = 0;
    loop {
        // Read whether the run is live *before* the logs, so nothing written before it ended is missed.
        let live = args.follow && RunnerLock::is_held(&run.run_dir);
        for (id, body) in store.events(&run.id, last_event)? {
            last_event = id;
            let Ok(event) = serde_json::from_str::<Value>(&body) else { continue };
            let Some((step, what, log)) = log_of(&event) else { continue };
            if args.step.as_ref().is_some_and(|s| s != &step) {
                continue;
            }
            writeln!(
                out,
                "==> {} {what}: {} <==",
                text::line(&step),
                text::line(&log.display().to_string())
            )?;
            printed.push((log, 0));
            // Logs print whole, in order, as each is reached.
            let (log, offset) = printed.last_mut().expect("just pushed");
            *offset = copy_from(log, *offset, &mut out, escape)?;
        }
        // Growth of logs still being written.
        for (log, offset) in printed.iter_mut() {
            *offset = copy_from(log, *offset, &mut out, escape)?;
        }
        out.flush()?;
        if !live {
            return Ok(exit::PASS);
        }
        std::thread::sleep(POLL);
    }
}

/// The log an event opens: a step's attempt or a repair round.
fn log_of(event: &Value) -> Option<(String, String, PathBuf)> {
    let step = event["step"].as_str()?.to_string();
    match event["event"].as_str()? {
        "step_started" => {
            let log = event["log"].as_str()?;
            Some((step, format!("attempt {}", event["attempt"]), PathBuf::from(log)))
        }
        "repair_started" => {
            let log = event["log"].as_str()?;
            let what = format!("repair {} ({})", event["round"], event["agent"].as_str().unwrap_or("?"));
            Some((step, what, PathBuf::from(log)))
        }
        _ => None,
    }
}

/// Print `log` from `offset`; returns the new offset. A log not written (yet) prints nothing.
fn copy_from(log: &Path, offset: u64, out: &mut impl Write, escape: bool) -> anyhow::Result<u64> {
    let Ok(mut file) = std::fs::File::open(log) else { return Ok(offset) };
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    if escape {
        // A person's terminal must not run a program's escape sequences.
        out.write_all(text::block(&String::from_utf8_lossy(&bytes)).as_bytes())?;
    } else {
        out.write_all(&bytes)?;
    }
    Ok(offset + bytes.len() as u64)
}

/// `greenlight cancel RUN`: a live run's runner stops its steps (their process groups are
/// killed) and ends the run `cancelled`; a run whose runner died is closed here.
pub fn cancel(args: CancelArgs) -> anyhow::Result<u8> {
    let store = open(&args.workdir)?;
    let run = store.run(&store.resolve(&args.run)?)?;
    let id = &run.id;
    if run.status != "running" {
        eprintln!("greenlight: run {id} already ended ({}); nothing to cancel", run.status);
        return Ok(exit::PASS);
    }
    // Holding the run's lock proves its runner is gone, and keeps a resume from starting
    // while what the runner left is cleaned up.
    if let Some(_lock) = RunnerLock::try_acquire(&run.run_dir)? {
        // Its runner died: stop what it left running, and close the record.
        crate::engine::run::stop_leftovers(&store, id)?;
        store.close_abandoned(id, "cancelled", "cancelled after its runner had stopped", now_millis())?;
        eprintln!("greenlight: run {id} cancelled (its runner had already stopped)");
        return Ok(exit::PASS);
    }
    store.request_cancel(id)?;
    eprintln!("greenlight: asked the runner of run {id} to cancel it...");
    let asked = Instant::now();
    while RunnerLock::is_held(&run.run_dir) {
        if asked.elapsed() > CANCEL_WAIT {
            eprintln!(
                "greenlight: run {id} has not stopped after {}s; its runner (pid {}) may be stuck",
                CANCEL_WAIT.as_secs(),
                run.runner_pid.map_or_else(|| "unknown".into(), |p| p.to_string())
            );
            return Ok(exit::FAIL);
        }
        std::thread::sleep(POLL);
    }
    let status = store.run(id)?.status;
    eprintln!("greenlight: run {id} {status}");
    Ok(exit::PASS)
}

/// The grants an untrusted run ran under, a line each (a trusted run says so).
fn grant_lines(grants: Option<&str>) -> Vec<String> {
    match Trust::from_stored(grants) {
        Ok(Trust::Trusted) => vec!["trust     trusted: the workflow ran with greenlight's own rights".into()],
        Ok(Trust::Untrusted(policy)) => {
            let mut lines =
                vec!["trust     untrusted: confined, and able to do only what was granted:".into()];
            lines.extend(policy.describe().into_iter().map(|line| format!("  {line}")));
            lines
        }
        Err(error) => vec![format!("trust     untrusted; {error:#}")],
    }
}
