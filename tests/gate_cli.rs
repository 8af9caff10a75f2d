//! `greenlight gate run | inspect | list`: what a user sees, the compile cache, parameters,
//! step input and the errors for bad input.

mod common;
use common::*;

use sha2::Digest;
use std::io::Write;
use std::process::Stdio;

#[test]
fn list_names_every_builtin_with_a_description() {
    let cache = tempfile::tempdir().unwrap();
    let out = greenlight(cache.path()).args(["gate", "list", "--json"]).output().unwrap();
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["gate"].as_str().unwrap()).collect();
    for expected in [
        "builtin:changed-files",
        "builtin:file-exists",
        "builtin:output-contains",
        "builtin:output-matches",
        "builtin:test-summary",
        "builtin:no-secrets",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    for row in rows.as_array().unwrap() {
        assert!(!row["description"].as_str().unwrap().is_empty(), "{row}");
    }
}

#[test]
fn inspect_shows_the_manifest_and_the_digest_of_the_file() {
    let cache = tempfile::tempdir().unwrap();
    let guest = test_guest("hostile");
    let out = greenlight(cache.path()).args(["gate", "inspect", "--json"]).arg(&guest).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = hex::encode(sha2::Sha256::digest(std::fs::read(&guest).unwrap()));
    assert_eq!(info["sha256"], expected.as_str());
    assert_eq!(info["manifest"]["name"], "hostile");
    let exec: Vec<&str> = info["manifest"]["capabilities"]["exec"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(exec.contains(&"git status **"), "{exec:?}");

    let text = greenlight(cache.path()).args(["gate", "inspect", "builtin:changed-files"]).output().unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("sha256") && text.contains("paths (list<string>") && text.contains("exec   git"),
        "{text}"
    );
}

#[test]
fn a_gate_is_compiled_once_then_loaded_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let noop = test_guest("noop").display().to_string();

    let first = gate_run(cache.path(), &noop, ws.path(), &[]);
    assert_eq!((first.code, first.outcome()), (0, "pass"));
    assert_eq!(first.json["cached"], false);
    let second = gate_run(cache.path(), &noop, ws.path(), &[]);
    assert_eq!(second.json["cached"], true);

    // A damaged cache entry is not trusted: the gate is compiled again and still runs.
    let entries: Vec<_> =
        std::fs::read_dir(cache.path().join("components")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    std::fs::write(&entries[0], b"not a compiled component").unwrap();
    let third = gate_run(cache.path(), &noop, ws.path(), &[]);
    assert_eq!((third.code, third.outcome()), (0, "pass"));
    assert_eq!(third.json["cached"], false);
    assert_eq!(gate_run(cache.path(), &noop, ws.path(), &[]).json["cached"], true);
}

#[test]
fn params_are_yaml_and_strings_are_taken_verbatim() {
    let cache = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let output = ws.path().join("out.txt");
    std::fs::write(&output, "REVIEW_VERDICT: CLEAN\nall good\n").unwrap();
    let out = output.display().to_string();
    // `text` is declared a string: "REVIEW_VERDICT: CLEAN" must not become a YAML mapping.
    let run = gate_run(
        cache.path(),
        "builtin:output-contains",
        ws.path(),
        &[
            "--output-file",
            &out,
            "--exit-code",
            "0",
            "--param",
            "text=REVIEW_VERDICT: CLEAN",
            "--param",
            "match=first-line",
        ],
    );
    assert_eq!((run.code, run.outcome()), (0, "pass"), "{}", run.summary());
}

#[test]
fn bad_params_are_usage_errors_that_list_what_the_gate_accepts() {
    let cache = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let out = greenlight(cache.path())
        .args(["gate", "run", "builtin:file-exists", "--workdir"])
        .arg(ws.path())
        .args(["--param", "pahts=[a]"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown parameter `pahts`"), "{stderr}");
    assert!(stderr.contains("missing required parameter `paths`"), "{stderr}");
    assert!(stderr.contains("it accepts: paths"), "{stderr}");

    let out = greenlight(cache.path())
        .args(["gate", "run", "builtin:file-exists", "--param", "paths"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected K=V"));
}

#[test]
fn the_step_output_can_come_from_stdin() {
    let cache = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let mut child = greenlight(cache.path())
        .args([
            "gate",
            "run",
            "builtin:output-contains",
            "--json",
            "--output-file",
            "-",
            "--param",
            "text=needle",
        ])
        .arg("--workdir")
        .arg(ws.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hay\nhay needle hay\n").unwrap();
    let run = parse_gate_run(child.wait_with_output().unwrap());
    assert_eq!((run.code, run.outcome()), (0, "pass"), "{}", run.summary());
}

#[test]
fn things_that_are_not_gates_are_refused_clearly() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("junk.wasm", b"hello, not wasm".to_vec(), "not a WebAssembly component"),
        ("module.wasm", b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module, not a component"),
        // A real component whose manifest was never embedded.
        ("bare.wasm", std::fs::read(bare_noop()).unwrap(), "has no `greenlight:manifest` section"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = greenlight(cache.path()).args(["gate", "run"]).arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }

    let out = greenlight(cache.path()).args(["gate", "run", "builtin:nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the built-ins are: changed-files"));

    let out = greenlight(cache.path()).args(["gate", "run", "missing.wasm"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
}

#[test]
fn a_gate_built_for_another_api_version_is_refused() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = br#"{"name":"future","version":"1.0.0","api":"0.2.0"}"#;
    let path = dir.path().join("future.wasm");
    std::fs::write(&path, append_section(&std::fs::read(bare_noop()).unwrap(), manifest)).unwrap();
    let out = greenlight(cache.path()).args(["gate", "run"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("built against gate API 0.2.0") && stderr.contains(">=0.1.0, <0.2.0"),
        "{stderr}"
    );
}

/// The noop guest as the compiler produced it, before the manifest was embedded.
fn bare_noop() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("guest-steps/wasm32-wasip2/release/noop.wasm")
}

/// A top-level custom section named greenlight:manifest (id 0, size, name, data).
fn append_section(component: &[u8], data: &[u8]) -> Vec<u8> {
    let name = b"greenlight:manifest";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(data);
    let mut out = component.to_vec();
    out.push(0);
    let mut size = payload.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&payload);
    out
}
