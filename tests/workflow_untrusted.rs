//! Untrusted workflows: a workflow the person running it did not write makes the host do only
//! what that person granted. Hostile workflows — one runs `curl`, one `rm -rf ~`, one writes
//! outside the workspace, one reads `~/.ssh`, one copies the environment into a step's output, one
//! smuggles a command through a template — are refused before anything runs, naming the grant
//! they lack and the flag that gives it, or, where a test grants them on purpose, contained
//! while they run: nothing outside the workspace changes.
//!
//! Every greenlight here runs with HOME set to a temporary home holding a canary file and a fake
//! SSH key; the real home is never touched.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const CANARY: &str = "canary: still here\n";
const SSH_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY----- SECRET-KEY-8c1f -----END-----\n";
const SECRET: &str = "s3cr3t-token-0d6e4b";

/// A workspace (a git repository), a fake home, a folder of workflow files and a folder beside
/// them, all in one temporary directory.
struct Scene {
    root: tempfile::TempDir,
    repo: Repo,
    cache: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(home.join("canary.txt"), CANARY).unwrap();
        std::fs::write(home.join(".ssh/id_rsa"), SSH_KEY).unwrap();
        std::fs::create_dir_all(root.path().join("outside")).unwrap();
        std::fs::write(root.path().join("outside/keep.txt"), "untouched\n").unwrap();
        std::fs::create_dir_all(root.path().join("flows")).unwrap();
        let repo = Repo::new(&[("README.md", "hello\n")]);
        Scene { root, repo, cache: tempfile::tempdir().unwrap() }
    }

    fn home(&self) -> PathBuf {
        self.root.path().canonicalize().unwrap().join("home")
    }

    fn outside(&self) -> PathBuf {
        self.root.path().canonicalize().unwrap().join("outside")
    }

    fn workspace(&self) -> &Path {
        self.repo.path()
    }

    /// A workflow file outside the workspace (so untrusted by default).
    fn workflow(&self, yaml: &str) -> PathBuf {
        let path = self.root.path().join("flows/workflow.yaml");
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// greenlight, its HOME the fake home, nothing pointing at the real one.
    fn greenlight(&self) -> Command {
        let mut command = greenlight(self.cache.path());
        command.env("HOME", self.home());
        for name in
            ["XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"]
        {
            command.env_remove(name);
        }
        command.env_remove("GREENLIGHT_LANDLOCK");
        command
    }

    fn run_command(&self, file: &Path, extra: &[&str]) -> Command {
        let mut command = self.greenlight();
        command.arg("run").arg(file).arg("--workdir").arg(self.workspace()).arg("--json").args(extra);
        command
    }

    fn run(&self, file: &Path, extra: &[&str]) -> WorkflowRun {
        WorkflowRun::from_output(self.run_command(file, extra).output().expect("run greenlight"))
    }

    /// Everything outside the workspace: each file's path and content, each folder's path.
    fn outside_workspace(&self) -> BTreeMap<PathBuf, String> {
        fn walk(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path == skip {
                    continue;
                }
                if path.is_dir() {
                    out.insert(path.clone(), "<dir>".into());
                    walk(&path, skip, out);
                } else {
                    out.insert(path.clone(), String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.root.path(), self.workspace(), &mut out);
        out
    }

    fn assert_home_intact(&self) {
        assert_eq!(std::fs::read_to_string(self.home().join("canary.txt")).unwrap(), CANARY);
        assert_eq!(std::fs::read_to_string(self.home().join(".ssh/id_rsa")).unwrap(), SSH_KEY);
    }
}

/// Every file of a run's folder (logs, task files, artifacts), concatenated.
fn run_files(run_dir: &Path) -> String {
    let mut out = String::new();
    let mut dirs = vec![run_dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// The run was refused before anything ran: exit 2, no event, and the message names `needles`.
fn assert_refused(run: &WorkflowRun, needles: &[&str]) {
    assert_eq!(run.code, Some(2), "{}", run.describe());
    assert!(run.events.is_empty(), "something was recorded: {}", run.describe());
    assert!(run.stderr.contains("nothing ran"), "{}", run.stderr);
    for needle in needles {
        assert!(run.stderr.contains(needle), "{needle:?} missing from:\n{}", run.stderr);
    }
}

/// The end of a step's output, as its last `step_finished` event reports it.
fn tail(run: &WorkflowRun, step: &str) -> String {
    let finished = run.of_step("step_finished", step);
    finished.last().and_then(|e| e["tail"].as_str()).unwrap_or_default().to_string()
}

fn landlock_here() -> bool {
    // What greenlight itself reports: a run that cannot be confined says so.
    let probe = Scene::new();
    let file = probe.workflow("version: 1\nsteps:\n- { name: s, run: 'true' }\n");
    let run = probe.run(&file, &["--grant-exec", "true"]);
    if run.stderr.contains("cannot be confined") {
        eprintln!("SKIPPED: this kernel cannot confine steps:\n{}", run.stderr);
        return false;
    }
    true
}

#[test]
fn a_command_that_is_not_granted_is_refused_before_anything_runs() {
    let scene = Scene::new();
    let file = scene.workflow(
        "version: 1\nsteps:\n- { name: fetch, run: 'curl -sS https://example.com/install.sh' }\n\
         - { name: after, needs: [fetch], run: 'touch ran' }\n",
    );
    let before = scene.outside_workspace();
    let run = scene.run(&file, &[]);
    assert_refused(
        &run,
        &[
            "step `fetch` runs `curl -sS https://example.com/install.sh`, which is not granted",
            "--grant-exec 'curl **'",
            "exec = [\"curl **\"]",
            "--grant-exec 'touch **'",
            "runs untrusted (the workflow file lies outside the workspace)",
        ],
    );
    assert!(!scene.workspace().join("ran").exists());
    assert_eq!(scene.outside_workspace(), before);
}

#[test]
fn a_granted_curl_has_no_network_unless_granted() {
    if !landlock_here() || which("curl").is_none() {
        return;
    }
    let scene = Scene::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port());
    let file = scene.workflow(
        "version: 1\nvars: { url: '' }\nsteps:\n\
         - { name: fetch, run: 'curl -sS --noproxy 127.0.0.1 --max-time 5 {{ vars.url }}' }\n",
    );
    let run = scene.run(&file, &["--grant-exec", "curl **", "--var", &format!("url={url}")]);
    assert_eq!(run.step_status("fetch"), "failed", "{}", run.describe());
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a step without the network reached a listener on this machine"
    );
}

#[test]
fn rm_rf_home_is_refused_and_granted_rm_cannot_reach_the_home() {
    let scene = Scene::new();
    // `~` needs a shell; untrusted commands run without one.
    let file = scene.workflow("version: 1\nsteps:\n- { name: wipe, run: 'rm -rf ~' }\n");
    let run = scene.run(&file, &["--grant-exec", "rm **"]);
    assert_refused(&run, &["step `wipe` uses shell syntax", "without a shell", "--grant-exec 'sh -c *'"]);
    scene.assert_home_intact();

    if !landlock_here() {
        return;
    }
    let file = scene.workflow(
        "version: 1\nvars: { home: '' }\nsteps:\n- { name: wipe, run: 'rm -rf {{ vars.home }}' }\n",
    );
    let before = scene.outside_workspace();
    let home = format!("home={}", scene.home().display());
    let run = scene.run(&file, &["--grant-exec", "rm **", "--var", &home]);
    assert_eq!(run.step_status("wipe"), "failed", "{}", run.describe());
    assert!(tail(&run, "wipe").contains("Permission denied"), "{}", run.describe());
    scene.assert_home_intact();
    assert_eq!(scene.outside_workspace(), before);
}

#[test]
fn writing_outside_the_workspace_is_refused_or_contained() {
    let scene = Scene::new();
    let target = scene.outside().join("pwned.txt");
    let file = scene.workflow(&format!(
        "version: 1\nsteps:\n- {{ name: drop, run: 'echo pwned > {}' }}\n",
        target.display()
    ));
    let run = scene.run(&file, &[]);
    assert_refused(&run, &["step `drop` uses shell syntax (a redirection", "--grant-exec 'sh -c *'"]);

    if !landlock_here() {
        return;
    }
    let before = scene.outside_workspace();
    // Granted a shell on purpose: it runs, confined to the workspace.
    let run = scene.run(&file, &["--grant-exec", "sh -c *"]);
    assert_eq!(run.step_status("drop"), "failed", "{}", run.describe());
    assert!(tail(&run, "drop").contains("Permission denied"), "{}", run.describe());
    assert!(!target.exists(), "an untrusted step wrote outside the workspace");
    assert_eq!(scene.outside_workspace(), before);
    scene.assert_home_intact();

    // Inside the workspace is fine; a path granted with --grant-write is too.
    let file = scene.workflow(&format!(
        "version: 1\nsteps:\n- {{ name: here, run: 'touch made-here' }}\n\
         - {{ name: there, run: 'touch {}' }}\n",
        target.display()
    ));
    let outside = scene.outside().display().to_string();
    let run = scene.run(&file, &["--grant-exec", "touch **", "--grant-write", &outside]);
    assert_eq!(run.status(), "succeeded", "{}", run.describe());
    assert!(scene.workspace().join("made-here").exists());
    assert!(target.exists());
}

#[test]
fn reading_the_ssh_key_is_refused_or_finds_nothing() {
    let scene = Scene::new();
    let file = scene.workflow("version: 1\nsteps:\n- { name: steal, run: 'cat ~/.ssh/id_rsa' }\n");
    let run = scene.run(&file, &["--grant-exec", "cat **"]);
    assert_refused(&run, &["step `steal` uses shell syntax (`~` (the home directory))"]);

    if !landlock_here() {
        return;
    }
    let file = scene.workflow(
        "version: 1\nvars: { key: '' }\nsteps:\n- { name: steal, run: 'cat {{ vars.key }}' }\n\
         - { name: post, needs: [steal], run: 'echo {{ steps.steal.output }}' }\n",
    );
    let key = format!("key={}", scene.home().join(".ssh/id_rsa").display());
    let run = scene.run(&file, &["--grant-exec", "cat **", "--grant-exec", "echo **", "--var", &key]);
    assert_eq!(run.step_status("steal"), "failed", "{}", run.describe());
    assert!(tail(&run, "steal").contains("Permission denied"), "{}", run.describe());
    assert_eq!(run.step_status("post"), "skipped");
    let events: String = run.events.iter().map(|e| e.to_string()).collect();
    assert!(!events.contains("SECRET-KEY"), "the key reached the events");
    assert!(!run_files(&run.run_dir()).contains("SECRET-KEY"), "the key reached the run's files");
    scene.assert_home_intact();
}

#[test]
fn the_environment_holds_no_secret_and_a_private_home() {
    if !landlock_here() {
        return;
    }
    let scene = Scene::new();
    let file = scene.workflow(
        "version: 1\nsteps:\n- { name: dump, run: printenv }\n\
         - { name: ship, needs: [dump], run: 'echo {{ steps.dump.output }}' }\n",
    );
    let run = WorkflowRun::from_output(
        scene
            .run_command(&file, &["--grant-exec", "printenv **", "--grant-exec", "echo **"])
            .env("GREENLIGHT_TEST_SECRET", SECRET)
            .output()
            .unwrap(),
    );
    assert_eq!(run.status(), "succeeded", "{}", run.describe());
    let log = std::fs::read_to_string(run.run_dir().join("steps/dump/attempt-1.log")).unwrap();
    assert!(log.contains("PATH="), "{log}");
    // HOME and TMPDIR: the run's private temp dir, outside the workspace, gone when the run ended.
    let home = log.lines().find_map(|l| l.strip_prefix("HOME=")).expect("HOME is set");
    assert!(home.contains("greenlight-untrusted-"), "HOME is not the run's private temp dir:\n{log}");
    assert!(log.contains(&format!("TMPDIR={home}")), "{log}");
    assert!(!Path::new(home).exists(), "the private temp dir outlived the run");
    assert!(!log.contains(&scene.home().display().to_string()), "the runner's home leaked:\n{log}");
    let events: String = run.events.iter().map(|e| e.to_string()).collect();
    assert!(!events.contains(SECRET) && !run_files(&run.run_dir()).contains(SECRET), "the secret leaked");
}

#[test]
fn an_agent_and_the_variables_it_passes_through_must_be_granted() {
    let scene = Scene::new();
    let agent = scene.root.path().join("flows/agents/fix.sh");
    write_executable(
        &agent,
        "#!/bin/sh\necho \"agent ran: $GREENLIGHT_TASK token=${GREENLIGHT_TEST_TOKEN:+set}\"\n",
    );
    let file = scene.workflow(
        "version: 1\nagents:\n  fixer: { command: [./agents/fix.sh, --careful], env: [GREENLIGHT_TEST_TOKEN] }\n\
         steps:\n- { name: fix, agent: fixer, task: 'tidy up' }\n",
    );
    let run = WorkflowRun::from_output(
        scene.run_command(&file, &[]).env("GREENLIGHT_TEST_TOKEN", SECRET).output().unwrap(),
    );
    assert_refused(
        &run,
        &[
            "agent `fixer` runs `./agents/fix.sh --careful`, which is not granted",
            "--grant-agent './agents/fix.sh'",
            "agent `fixer` passes GREENLIGHT_TEST_TOKEN through from your environment",
            "--grant-env GREENLIGHT_TEST_TOKEN",
        ],
    );

    if !landlock_here() {
        return;
    }
    let grants = ["--grant-agent", "./agents/fix.sh", "--grant-env", "GREENLIGHT_TEST_TOKEN"];
    let run = WorkflowRun::from_output(
        scene.run_command(&file, &grants).env("GREENLIGHT_TEST_TOKEN", SECRET).output().unwrap(),
    );
    assert_eq!(run.status(), "succeeded", "{}", run.describe());
    let log = std::fs::read_to_string(run.run_dir().join("steps/fix/attempt-1.log")).unwrap();
    assert_eq!(log, "agent ran: tidy up token=set\n");
}

#[test]
fn a_template_can_never_smuggle_a_command() {
    let scene = Scene::new();
    // A value is one argument: printed, never run.
    let payload = "x; touch PWNED $(touch PWNED) `touch PWNED`";
    let file = scene.workflow(&format!(
        "version: 1\nsteps:\n- {{ name: a, run: \"printf '%s' '{payload}'\" }}\n\
         - {{ name: b, needs: [a], run: 'printf %s {{{{ steps.a.output }}}}' }}\n"
    ));
    if landlock_here() {
        let run = scene.run(&file, &["--grant-exec", "printf **"]);
        assert_eq!(run.status(), "succeeded", "{}", run.describe());
        let b = std::fs::read_to_string(run.run_dir().join("steps/b/attempt-1.log")).unwrap();
        assert_eq!(b, payload);
        assert!(!scene.workspace().join("PWNED").exists());
    }

    // A template cannot name the program.
    let file = scene.workflow(
        "version: 1\nsteps:\n- { name: a, run: 'printf curl' }\n\
         - { name: b, needs: [a], run: '{{ steps.a.output }} https://example.com' }\n",
    );
    let run = scene.run(&file, &["--grant-exec", "printf **", "--grant-exec", "curl **"]);
    assert_refused(&run, &["step `b` cannot run in an untrusted workflow: the program is a template"]);

    // Nor be the script of `sh -c` (which no workflow may do: the file is invalid).
    let file = scene.workflow(
        "version: 1\nsteps:\n- { name: a, run: 'printf curl' }\n\
         - { name: c, needs: [a], run: 'sh -c {{ steps.a.output }}' }\n",
    );
    let run = scene.run(&file, &["--grant-exec", "printf **", "--grant-exec", "sh -c *"]);
    assert_eq!(run.code, Some(2), "{}", run.describe());
    assert!(run.events.is_empty() && run.stderr.contains("command string of `sh -c`"), "{}", run.stderr);

    // A grant with a literal argument does not cover a template there.
    let file = scene
        .workflow("version: 1\nvars: { sub: status }\nsteps:\n- { name: g, run: 'git {{ vars.sub }}' }\n");
    let run = scene.run(&file, &["--grant-exec", "git status"]);
    assert_refused(&run, &["step `g` runs `git '{{ vars.sub }}'`, which is not granted"]);
}

#[test]
fn trust_follows_where_the_workflow_is_and_the_flags() {
    let scene = Scene::new();
    let yaml = "version: 1\nsteps:\n- { name: note, run: 'echo hi > note.txt' }\n";

    // Outside the workspace: untrusted unless --trust.
    let outside = scene.workflow(yaml);
    assert_refused(&scene.run(&outside, &[]), &["--grant-exec 'sh -c *'"]);
    let run = scene.run(&outside, &["--trust"]);
    assert_eq!(run.status(), "succeeded", "{}", run.describe());
    assert!(!run.stderr.contains("untrusted"), "{}", run.stderr);
    assert_eq!(scene.repo.read("note.txt"), "hi\n");

    // Inside the workspace: trusted unless --untrusted.
    std::fs::remove_file(scene.workspace().join("note.txt")).unwrap();
    let inside = scene.workspace().join("flow.yaml");
    std::fs::write(&inside, yaml).unwrap();
    let run = scene.run(&inside, &[]);
    assert_eq!(run.status(), "succeeded", "{}", run.describe());
    assert_refused(&scene.run(&inside, &["--untrusted"]), &["runs untrusted (--untrusted)"]);

    // A workflow component is never trusted.
    let component = scene.root.path().join("flows/flow.wasm");
    std::fs::write(&component, b"\0asm").unwrap();
    let run = scene.run(&component, &["--trust"]);
    assert_eq!(run.code, Some(2), "{}", run.describe());
    assert!(run.stderr.contains("--trust") && run.stderr.contains("(.wasm), which always runs untrusted"));
}

#[test]
fn the_policy_file_grants_what_the_flags_grant_and_no_agent_may_change_it() {
    let scene = Scene::new();
    let file = scene.workflow("version: 1\nsteps:\n- { name: hi, run: 'echo hello' }\n");
    assert_refused(&scene.run(&file, &[]), &["--grant-exec 'echo **'"]);
    if !landlock_here() {
        return;
    }
    let policy = scene.workspace().join("greenlight.policy.toml");
    std::fs::write(&policy, "exec = [\"echo **\"]\n").unwrap();
    let run = scene.run(&file, &[]);
    assert_eq!(run.status(), "succeeded", "{}", run.describe());

    // The same grants from a file named with --policy, elsewhere.
    std::fs::remove_file(&policy).unwrap();
    let elsewhere = scene.root.path().join("flows/grants.toml");
    std::fs::write(&elsewhere, "exec = [\"echo **\"]\n").unwrap();
    let run = scene.run(&file, &["--policy", elsewhere.to_str().unwrap()]);
    assert_eq!(run.status(), "succeeded", "{}", run.describe());

    // A mistake in it is reported where it is.
    std::fs::write(&policy, "exec = [\"echo **\"]\nnetwork = true\n").unwrap();
    let run = scene.run(&file, &[]);
    assert_eq!(run.code, Some(2), "{}", run.describe());
    assert!(run.stderr.contains("greenlight.policy.toml:2:1:"), "{}", run.stderr);

    // Nor can a step, granted a shell that could write anything in the workspace.
    std::fs::write(&policy, "exec = [\"sh -c *\"]\n").unwrap();
    let file = scene.workflow(
        "version: 1\nsteps:\n- { name: widen, run: 'echo net = true >> greenlight.policy.toml' }\n",
    );
    let run = scene.run(&file, &[]);
    assert_eq!(run.step_status("widen"), "failed", "{}", run.describe());
    assert!(run.finished()["summary"][0]["reason"].as_str().unwrap().contains("changed the policy file"));
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), "exec = [\"sh -c *\"]\n");

    // An agent of the run cannot loosen it: the change is put back and fails the step.
    std::fs::write(&policy, "agents = [\"./agents/loosen.sh\"]\n").unwrap();
    write_executable(
        &scene.root.path().join("flows/agents/loosen.sh"),
        "#!/bin/sh\necho 'exec = [\"sh **\"]' >> \"$GREENLIGHT_WORKSPACE/greenlight.policy.toml\"\n",
    );
    let file = scene.workflow(
        "version: 1\nagents: { loosen: { command: [./agents/loosen.sh] } }\n\
         steps:\n- { name: l, agent: loosen, task: go }\n",
    );
    let run = scene.run(&file, &[]);
    assert_eq!(run.step_status("l"), "failed", "{}", run.describe());
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), "agents = [\"./agents/loosen.sh\"]\n");
}

#[test]
fn a_resumed_run_keeps_the_grants_it_started_with_and_show_lists_them() {
    if !landlock_here() {
        return;
    }
    let scene = Scene::new();
    let file = scene.workflow("version: 1\nsteps:\n- { name: check, run: 'test -f flag' }\n");
    let run = scene.run(&file, &["--grant-exec", "test **"]);
    assert_eq!(run.status(), "failed", "{}", run.describe());
    std::fs::write(scene.workspace().join("flag"), "").unwrap();
    let resumed =
        scene.greenlight().args(["resume", "latest", "--workdir"]).arg(scene.workspace()).output().unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", String::from_utf8_lossy(&resumed.stderr));
    let show =
        scene.greenlight().args(["show", "latest", "--workdir"]).arg(scene.workspace()).output().unwrap();
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains("untrusted") && shown.contains("test **"), "{shown}");
}

#[test]
fn plan_lists_what_the_workflow_asks_for_and_what_is_granted() {
    let scene = Scene::new();
    let file = scene.workflow(
        "version: 1\nagents: { coder: { cli: claude, env: [ANTHROPIC_API_KEY] } }\nsteps:\n\
         - { name: fetch, run: 'curl -sS https://example.com' }\n\
         - { name: hi, run: 'echo hi' }\n\
         - { name: code, agent: coder, task: go }\n",
    );
    let out = scene
        .greenlight()
        .arg("plan")
        .arg(&file)
        .arg("--workdir")
        .arg(scene.workspace())
        .args(["--grant-exec", "echo **", "--grant-net"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for needle in [
        "asks for (untrusted: the workflow file lies outside the workspace",
        "step `fetch`: exec curl -sS https://example.com  ->  NOT granted: --grant-exec 'curl **'",
        "step `hi`: exec echo hi  ->  granted",
        "agent `coder`: agent claude  ->  NOT granted: --grant-agent 'claude'",
        "agent `coder`: env ANTHROPIC_API_KEY  ->  NOT granted: --grant-env ANTHROPIC_API_KEY",
        "agent `coder`: network  ->  granted",
        "grants         exec: 'echo **'",
        "a run would refuse: step `fetch` runs",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }

    let out = scene
        .greenlight()
        .arg("plan")
        .arg(&file)
        .arg("--workdir")
        .arg(scene.workspace())
        .args(["--format", "json", "--grant-exec", "echo **"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let trust = &json["trust"];
    assert_eq!(trust["trusted"], false);
    let asks = trust["asks"].as_array().unwrap();
    assert_eq!(asks.len(), 5, "{asks:?}");
    assert_eq!(asks[0]["argv"], serde_json::json!(["curl", "-sS", "https://example.com"]));
    assert_eq!(asks[0]["granted"], false);
    assert_eq!(asks[0]["flag"], "--grant-exec 'curl **'");
    assert_eq!(asks[1]["granted"], true);
    assert_eq!(trust["grants"]["exec"], serde_json::json!(["echo **"]));
}

#[test]
fn where_steps_cannot_be_confined_the_run_is_refused_unless_allowed_unconfined() {
    let scene = Scene::new();
    let file = scene.workflow("version: 1\nsteps:\n- { name: hi, run: 'echo hi' }\n");
    let run = WorkflowRun::from_output(
        scene
            .run_command(&file, &["--grant-exec", "echo **"])
            .env("GREENLIGHT_LANDLOCK", "off")
            .output()
            .unwrap(),
    );
    assert_refused(
        &run,
        &["cannot be confined on this machine", "Landlock is unavailable", "--allow-unconfined"],
    );

    let run = WorkflowRun::from_output(
        scene
            .run_command(&file, &["--grant-exec", "echo **", "--allow-unconfined"])
            .env("GREENLIGHT_LANDLOCK", "off")
            .output()
            .unwrap(),
    );
    assert_eq!(run.status(), "succeeded", "{}", run.describe());
    let log = std::fs::read_to_string(run.run_dir().join("steps/hi/attempt-1.log")).unwrap();
    assert!(log.starts_with("greenlight: this step of an untrusted workflow runs UNCONFINED"), "{log}");
    assert!(log.ends_with("hi\n"), "{log}");
}

/// Granted a shell, a step may write anywhere in the workspace except `.git` (a hook or a
/// `core.fsmonitor` there would be run by greenlight's own git commands, unconfined) and
/// `.greenlight` (the run store, which holds the run's grants and its steps' results): those two
/// are read-only to it. Its private temp dir stays writable.
#[test]
fn a_step_can_neither_plant_a_git_hook_nor_touch_the_run_store() {
    if !landlock_here() {
        return;
    }
    let scene = Scene::new();
    let config = std::fs::read_to_string(scene.workspace().join(".git/config")).unwrap();
    let file = scene.workflow(
        "version: 1\nsteps:\n\
         - { name: tmp, run: 'echo scratch > \"$TMPDIR/scratch\" && cat \"$TMPDIR/scratch\"' }\n\
         - name: plant\n  needs: [tmp]\n  run: |\n\
         \x20   echo made > made.txt\n\
         \x20   echo 'touch PWNED' > .git/hooks/post-commit; chmod +x .git/hooks/post-commit\n\
         \x20   printf '[core]\\n\\tfsmonitor = touch PWNED\\n' >> .git/config\n\
         \x20   rm -f .greenlight/runs.db-wal; echo x >> .greenlight/runs.db\n",
    );
    let run = scene.run(&file, &["--grant-exec", "sh -c *"]);
    assert_eq!(run.step_status("tmp"), "succeeded", "{}", run.describe());
    let tmp_log = std::fs::read_to_string(run.run_dir().join("steps/tmp/attempt-1.log")).unwrap();
    assert_eq!(tmp_log, "scratch\n", "the run's temp dir is not writable");
    assert_eq!(run.step_status("plant"), "failed", "{}", run.describe());
    let plant = tail(&run, "plant");
    assert!(plant.contains("Read-only file system"), "{}", run.describe());
    assert_eq!(scene.repo.read("made.txt"), "made\n", "the workspace stays writable");
    assert!(!scene.workspace().join(".git/hooks/post-commit").exists(), "a hook was planted");
    assert_eq!(std::fs::read_to_string(scene.workspace().join(".git/config")).unwrap(), config);

    // The store is intact: it lists the run, and greenlight's git commands run no planted code.
    let runs =
        scene.greenlight().args(["runs", "--json", "--workdir"]).arg(scene.workspace()).output().unwrap();
    assert_eq!(runs.status.code(), Some(0), "{}", String::from_utf8_lossy(&runs.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["status"], "failed", "{listed}");
    scene.repo.git(&["add", "made.txt"]);
    scene.repo.git(&["commit", "-qm", "made"]);
    assert!(!scene.workspace().join("PWNED").exists(), "planted code ran");
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(program)).find(|p| p.is_file())
}
