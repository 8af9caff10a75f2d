//! Engine benchmarks (issue 3): `cargo bench --bench engine` (add `-- --quick` for 3 runs a case
//! instead of 7).
//!
//! Each case writes a workflow into a temp dir and runs the bench-profile binary as a user would,
//! `greenlight run FILE --workdir DIR --json`, as a child process. Per run it records
//! - wall time, measured here from spawning the child to reaping it;
//! - the engine's own `duration_ms`, from the `run_finished` event;
//! - peak RSS: `ru_maxrss` from `wait4` on the child. On Linux that is the maximum over the child
//!   and every descendant it waited for (the steps' `sh`). A process also inherits the high-water
//!   mark of the address space it replaced at `exec` (kernel `exec_mmap`), so every step's `sh`
//!   starts at greenlight's peak so far and greenlight starts at this bench's: the figure is
//!   max(greenlight's own peak, this bench's peak at spawn). Both other terms are printed: a
//!   `sh -c true` of its own stays ~2 MB, and the bench's own peak is a floor, far below.
//!
//! Each case gets one untimed warm-up run and a workspace of its own. The run records
//! (`.greenlight/runs/` in the workspace) pile up as in real use and are removed only at the end:
//! on ext4 without a journal (as on the 2-core VM this was written on), creating an inode skips
//! every inode deleted in the last 60–300 s, one buffer-cache lookup each, so deleting thousands
//! of step logs between runs made the next runs' per-step `mkdir` + log `open` the hottest code
//! (a 1,000-step wide DAG: 0.53 s → 1.0 s). For the same reason a bench started within minutes of
//! another one (which deleted its temp dirs) reads slower. The 20,000 files are written and
//! `sync`ed before anything is timed.
//!
//! Cases report the median and [min – max]. PASS/MISS compares the median wall time (from
//! outside, so it includes process start) and the median peak RSS with the targets of issue 3.
//! Informational only: a bench never fails the build.

mod common;
use common::{Stats, loadavg, stats};

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

const GREENLIGHT: &str = env!("CARGO_BIN_EXE_greenlight");

/// One run of greenlight.
struct Sample {
    wall_ms: f64,
    engine_ms: f64,
    rss_mb: f64,
}

/// A finished case: its samples and how they compare with the targets.
struct Case {
    label: String,
    wall: Stats,
    engine: Stats,
    rss: Stats,
    target_wall_ms: Option<f64>,
    target_rss_mb: Option<f64>,
    relay: &'static str,
}

struct Bench {
    runs: usize,
    cache: tempfile::TempDir,
    workflows: tempfile::TempDir,
    /// The cases' own workspaces, all deleted at the end (see the top of the file).
    workspaces: tempfile::TempDir,
}

impl Bench {
    /// Writes `yaml`, runs it once untimed, then `self.runs` times, in `workspace` or else in an
    /// empty directory of its own.
    fn measure(&self, name: &str, yaml: &str, workspace: Option<&Path>) -> anyhow::Result<Vec<Sample>> {
        let file = self.workflows.path().join(format!("{name}.yaml"));
        std::fs::write(&file, yaml)?;
        let empty = self.workspaces.path().join(name);
        std::fs::create_dir(&empty)?;
        let workspace = workspace.unwrap_or(&empty);
        run_greenlight(&file, workspace, self.cache.path())?; // warm-up
        (0..self.runs).map(|_| run_greenlight(&file, workspace, self.cache.path())).collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn case(
        &self,
        label: &str,
        name: &str,
        yaml: &str,
        workspace: Option<&Path>,
        target_wall_ms: Option<f64>,
        target_rss_mb: Option<f64>,
        relay: &'static str,
    ) -> anyhow::Result<Case> {
        eprint!("  running {label} ...");
        let samples = self.measure(name, yaml, workspace)?;
        let case = Case {
            label: label.to_string(),
            wall: stats(samples.iter().map(|s| s.wall_ms)),
            engine: stats(samples.iter().map(|s| s.engine_ms)),
            rss: stats(samples.iter().map(|s| s.rss_mb)),
            target_wall_ms,
            target_rss_mb,
            relay,
        };
        eprintln!(" {:.1} ms", case.wall.median);
        Ok(case)
    }
}

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 3 } else { 7 };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let bench = Bench {
        runs,
        cache: tempfile::tempdir()?,
        workflows: tempfile::tempdir()?,
        workspaces: tempfile::tempdir()?,
    };

    println!("greenlight engine benchmarks (issue 3)");
    println!("  binary: {GREENLIGHT}");
    println!(
        "  cores: {cores} (available_parallelism); {runs} runs per case after 1 warm-up{}",
        if quick { " (--quick)" } else { "" }
    );
    println!("  steps run `true` through greenlight's `sh -c`; GREENLIGHT_CACHE_DIR is a temp dir");
    println!("  load average at start: {}\n", loadavg());

    eprintln!("creating a workspace of 20,000 files (200 dirs x 100 files) ...");
    let big = tempfile::tempdir()?;
    let t = Instant::now();
    let files = populate(big.path(), 200, 100)?;
    // SAFETY: no preconditions; writes the new files out so that writeback does not land in a case.
    unsafe { libc::sync() };
    eprintln!("  {files} files in {:.1} s", t.elapsed().as_secs_f64());

    eprintln!("measuring ({runs} runs per case):");
    let one = bench.case("1-step (baseline)", "one", &chain(1), None, None, None, "")?;
    let c50 =
        bench.case("50-step chain", "chain50", &chain(50), None, None, None, "1.00-1.33 s, 120-125 MB")?;
    let spawn = spawn_baseline(runs, 50)?;
    let wide200 = bench.case(
        "200-step wide DAG (conc 16)",
        "wide200",
        &wide(200, 16),
        None,
        Some(1000.0),
        None,
        "395 s, 124 MB",
    )?;
    let c50big = bench.case(
        "50-step chain, 20k-file workspace",
        "chain50big",
        &chain(50),
        Some(big.path()),
        Some(500.0),
        Some(40.0),
        "13.67 s, 416 MB",
    )?;
    let c1000 = bench.case("1,000-step chain", "chain1000", &chain(1000), None, None, None, "")?;
    let wide1000 =
        bench.case("1,000-step wide DAG (conc 16)", "wide1000", &wide(1000, 16), None, None, None, "")?;
    let load_end = loadavg();
    let sh_hwm = sh_own_peak_kib()?;
    let bench_hwm = own_peak_kib();

    println!(
        "results: median [min – max]; times in ms; peak RSS = ru_maxrss of wait4 on greenlight, MB = 10^6 B"
    );
    println!(
        "{:<34} {:>26} {:>22} {:>22}  {:<18} {:<24} verdict",
        "case", "wall (from outside), ms", "engine duration_ms", "peak RSS", "target", "agent-relay"
    );
    println!("{}", "-".repeat(160));
    for case in [&one, &c50, &wide200, &c50big, &c1000, &wide1000] {
        print_row(case);
    }

    println!("\nper-step overhead, 50-step chain vs 1-step, (median50 - median1) / 49:");
    let per_step_wall = (c50.wall.median - one.wall.median) / 49.0;
    let per_step_engine = (c50.engine.median - one.engine.median) / 49.0;
    println!("  wall (outside):        {per_step_wall:.2} ms/step");
    println!("  engine duration_ms:    {per_step_engine:.2} ms/step (ms resolution)");
    println!("  agent-relay:           ≈7 ms/step inside its engine (notes §4)");
    let per_spawn = spawn.median / 50.0;
    println!(
        "  context: 50 x `/bin/sh -c true` spawned sequentially from this bench (std::process::Command): \
         {} [{} – {}], {per_spawn:.2} ms per spawn",
        ms(spawn.median),
        ms(spawn.min),
        ms(spawn.max)
    );
    println!(
        "  ratio: greenlight per-step overhead / bare spawn = {:.2}x; 50-step chain wall / 50 bare spawns = {:.2}x",
        per_step_wall / per_spawn,
        c50.wall.median / spawn.median
    );

    println!("\nload average at the end: {load_end} (other load on the machine shows up as noise)");
    println!("\npeak RSS, what it covers:");
    println!(
        "  ru_maxrss from wait4 = max over greenlight and the step processes it reaped; each step's \
         sh inherits greenlight's high-water mark at exec, so the figure is greenlight's own peak"
    );
    println!(
        "  a `sh -c` of its own (VmHWM of /bin/sh after exec): {:.1} MB; this bench's own peak \
         (inherited by greenlight at exec, a floor): {:.1} MB",
        sh_hwm as f64 * 1024.0 / 1e6,
        bench_hwm.map_or(f64::NAN, |k| k as f64 * 1024.0 / 1e6)
    );
    Ok(())
}

fn print_row(case: &Case) {
    let mut target = Vec::new();
    let mut verdicts = Vec::new();
    if let Some(t) = case.target_wall_ms {
        target.push(format!("< {} s", t / 1000.0));
        verdicts.push(if case.wall.median < t { "PASS" } else { "MISS" });
    }
    if let Some(t) = case.target_rss_mb {
        target.push(format!("< {t:.0} MB"));
        verdicts.push(if case.rss.median < t { "PASS" } else { "MISS" });
    }
    let target = if target.is_empty() { "—".to_string() } else { target.join(", ") };
    let verdict = if verdicts.is_empty() { "—".to_string() } else { verdicts.join(" / ") };
    let relay = if case.relay.is_empty() { "—" } else { case.relay };
    println!(
        "{:<34} {:>26} {:>22} {:>22}  {:<18} {:<24} {}",
        case.label,
        format!("{:.1} [{:.1} – {:.1}]", case.wall.median, case.wall.min, case.wall.max),
        format!("{:.0} [{:.0} – {:.0}]", case.engine.median, case.engine.min, case.engine.max),
        format!("{:.1} MB [{:.1} – {:.1}]", case.rss.median, case.rss.min, case.rss.max),
        target,
        relay,
        verdict
    );
}

fn ms(v: f64) -> String {
    if v >= 1000.0 { format!("{:.2} s", v / 1000.0) } else { format!("{v:.1} ms") }
}

/// `n` steps of `true`, each needing the one before.
fn chain(n: usize) -> String {
    let mut yaml = format!("version: 1\nname: bench-chain-{n}\nmax_concurrency: 16\nsteps:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - name: s{i:04}\n    run: \"true\"\n"));
        if i > 0 {
            yaml.push_str(&format!("    needs: [s{:04}]\n", i - 1));
        }
    }
    yaml
}

/// `n` steps of `true`: a root, `n - 2` steps needing only the root, and a sink needing them all.
fn wide(n: usize, max_concurrency: usize) -> String {
    let mut yaml = format!("version: 1\nname: bench-wide-{n}\nmax_concurrency: {max_concurrency}\nsteps:\n");
    yaml.push_str("  - name: root\n    run: \"true\"\n");
    let middle: Vec<String> = (1..n - 1).map(|i| format!("w{i:04}")).collect();
    for name in &middle {
        yaml.push_str(&format!("  - name: {name}\n    run: \"true\"\n    needs: [root]\n"));
    }
    yaml.push_str(&format!("  - name: sink\n    run: \"true\"\n    needs: [{}]\n", middle.join(", ")));
    yaml
}

/// `dirs` x `per_dir` small files under `root`.
fn populate(root: &Path, dirs: usize, per_dir: usize) -> anyhow::Result<usize> {
    for d in 0..dirs {
        let dir = root.join(format!("src/mod{d:03}"));
        std::fs::create_dir_all(&dir)?;
        for f in 0..per_dir {
            std::fs::write(dir.join(format!("file{f:03}.rs")), format!("pub fn f{d}_{f}() {{}}\n"))?;
        }
    }
    Ok(dirs * per_dir)
}

/// Runs `greenlight run FILE --workdir WORKSPACE --json` to its end and measures it.
fn run_greenlight(file: &Path, workspace: &Path, cache: &Path) -> anyhow::Result<Sample> {
    let mut stderr = tempfile::tempfile()?;
    let start = Instant::now();
    let mut child = Command::new(GREENLIGHT)
        .arg("run")
        .arg(file)
        .arg("--workdir")
        .arg(workspace)
        .arg("--json")
        .env("GREENLIGHT_CACHE_DIR", cache)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr.try_clone()?)
        .spawn()
        .context("spawning greenlight")?;
    let mut out = String::new();
    child.stdout.take().expect("piped").read_to_string(&mut out)?;
    let (status, usage) = wait4(child.id())?;
    let wall = start.elapsed();

    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let mut err = String::new();
        use std::io::Seek;
        stderr.rewind()?;
        stderr.read_to_string(&mut err)?;
        bail!(
            "greenlight run {} failed (wait status {status:#x}):\n{err}\nlast event: {}",
            file.display(),
            out.lines().last().unwrap_or("")
        );
    }
    let last = out.lines().last().context("greenlight printed no events")?;
    let event: serde_json::Value = serde_json::from_str(last).context("last line is not JSON")?;
    if event["event"] != "run_finished" || event["status"] != "succeeded" {
        bail!("the run did not finish green: {last}");
    }
    let engine_ms = event["duration_ms"].as_u64().context("run_finished without duration_ms")?;
    Ok(Sample {
        wall_ms: wall.as_secs_f64() * 1e3,
        engine_ms: engine_ms as f64,
        rss_mb: usage.ru_maxrss as f64 * 1024.0 / 1e6, // KiB on Linux
    })
}

/// Reaps `pid` and returns its wait status and resource usage.
fn wait4(pid: u32) -> std::io::Result<(libc::c_int, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; `pid` is our unreaped child.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r == pid as libc::pid_t {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Total wall time of `n` sequential `/bin/sh -c true`, `runs` times after a warm-up.
fn spawn_baseline(runs: usize, n: usize) -> anyhow::Result<Stats> {
    let once = || -> anyhow::Result<f64> {
        let t = Instant::now();
        for _ in 0..n {
            let status = Command::new("/bin/sh").args(["-c", "true"]).status()?;
            assert!(status.success());
        }
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    once()?;
    let samples = (0..runs).map(|_| once()).collect::<anyhow::Result<Vec<f64>>>()?;
    Ok(stats(samples))
}

/// VmHWM of a `/bin/sh` after exec, read by the shell itself with builtins only (KiB).
fn sh_own_peak_kib() -> anyhow::Result<u64> {
    let script =
        r#"while read -r key value rest; do [ "$key" = VmHWM: ] && echo "$value"; done < /proc/$$/status"#;
    let out = Command::new("/bin/sh").args(["-c", script]).output()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().context("VmHWM of sh")
}

/// This process's own VmHWM (KiB).
fn own_peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
