//! Builds guest-steps/ for wasm32-wasip2 and embeds each component's manifest (a gate's gate.toml,
//! a workflow component's workflow.toml) into it, the same way `greenlight gate build` does. The
//! built-in gates (guest-steps/gates) are compiled into the binary; the example workflow
//! components (guest-steps/workflows) are left in OUT_DIR (GREENLIGHT_TEST_WORKFLOWS_DIR) and
//! copied to TARGET/guest-steps/workflows/NAME.wasm for the examples' scripts; the test guests
//! (guest-steps/test-guests, gates and workflows) are left in OUT_DIR for the test suite
//! (GREENLIGHT_TEST_GUESTS_DIR).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

#[path = "src/sandbox/manifest/section.rs"]
mod section;

#[path = "src/kits/outer_cargo.rs"]
mod outer_cargo;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let host = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = host.parent().unwrap();
    let guests = root.join("guest-steps");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guest-steps");

    println!("cargo:rerun-if-changed={}", guests.display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    build_guests(&guests, &target_dir);
    let wasm_dir = target_dir.join(TARGET).join("release");

    let builtins = embed_all(&guests.join("gates"), &wasm_dir, &out.join("gates"));
    for gate in &builtins {
        assert!(
            gate.kind == Kind::Gate,
            "guest-steps/gates/{}: a built-in gate needs a gate.toml",
            gate.name
        );
    }
    let workflows = embed_all(&guests.join("workflows"), &wasm_dir, &out.join("workflows"));
    let scripts_dir = target_dir.join("workflows");
    std::fs::create_dir_all(&scripts_dir).unwrap();
    for flow in &workflows {
        assert!(
            flow.kind == Kind::Workflow,
            "guest-steps/workflows/{}: a workflow component needs a workflow.toml",
            flow.name
        );
        let copy = scripts_dir.join(format!("{}.wasm", flow.name));
        std::fs::copy(&flow.path, &copy).unwrap_or_else(|e| panic!("{}: {e}", copy.display()));
    }
    let test_guests = embed_all(&guests.join("test-guests"), &wasm_dir, &out.join("test-guests"));
    assert!(!test_guests.is_empty(), "no test guests under guest-steps/test-guests");

    let mut code = String::from("pub static BUILTINS: &[Builtin] = &[\n");
    for gate in &builtins {
        code.push_str(&format!(
            "    Builtin {{ name: {:?}, wasm: include_bytes!({:?}), sha256: {:?} }},\n",
            gate.name, gate.path, gate.sha256
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("builtins.rs"), code).unwrap();
    println!("cargo:rustc-env=GREENLIGHT_TEST_GUESTS_DIR={}", out.join("test-guests").display());
    println!("cargo:rustc-env=GREENLIGHT_TEST_WORKFLOWS_DIR={}", out.join("workflows").display());
}

fn build_guests(guests: &Path, target_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(target_dir)
        .current_dir(guests);
    // This is a separate build for another target: nothing of the outer build's flags applies.
    for var in outer_cargo::OUTER_CARGO_VARS {
        command.env_remove(var);
    }
    let output = command.output().expect("run cargo to build guest-steps");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("target may not be installed") || stderr.contains("can't find crate for `core`") {
            panic!(
                "\n\nThe {TARGET} target is not installed; greenlight's built-in gates are compiled for it.\n\
                 Install it with:\n\n    rustup target add {TARGET}\n\n"
            );
        }
        panic!("building guest-steps/ for {TARGET} failed:\n{stderr}");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A crate with a gate.toml.
    Gate,
    /// A crate with a workflow.toml.
    Workflow,
}

struct Embedded {
    name: String,
    kind: Kind,
    path: PathBuf,
    sha256: String,
}

/// For each crate under `dir`: its built .wasm with its manifest (gate.toml or workflow.toml)
/// embedded, written to `out`.
fn embed_all(dir: &Path, wasm_dir: &Path, out: &Path) -> Vec<Embedded> {
    std::fs::create_dir_all(out).unwrap();
    let mut crates: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).filter(|p| p.join("Cargo.toml").exists()).collect())
        .unwrap_or_default();
    crates.sort();
    crates
        .iter()
        .map(|krate| {
            let name = krate.file_name().unwrap().to_str().unwrap().to_string();
            let (kind, manifest_path) = match (krate.join("gate.toml"), krate.join("workflow.toml")) {
                (gate, flow) if gate.exists() && flow.exists() => {
                    panic!(
                        "{}: has both gate.toml and workflow.toml; a component is one or the other",
                        krate.display()
                    )
                }
                (_, flow) if flow.exists() => (Kind::Workflow, flow),
                (gate, _) => (Kind::Gate, gate),
            };
            let text = std::fs::read_to_string(&manifest_path)
                .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
            let manifest: toml::Value =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
            assert_eq!(
                manifest.get("name").and_then(|n| n.as_str()),
                Some(name.as_str()),
                "{}: `name` must match the crate's directory",
                manifest_path.display()
            );
            if kind == Kind::Workflow {
                check_read_only(&manifest, &manifest_path);
            }
            let json = serde_json::to_vec(&manifest).unwrap();
            let wasm_file = wasm_dir.join(format!("{}.wasm", name.replace('-', "_")));
            let wasm = std::fs::read(&wasm_file).unwrap_or_else(|e| panic!("{}: {e}", wasm_file.display()));
            let embedded = section::append_manifest(&wasm, &json);
            let path = out.join(format!("{name}.wasm"));
            std::fs::write(&path, &embedded).unwrap();
            Embedded { name, kind, path, sha256: hex::encode(Sha256::digest(&embedded)) }
        })
        .collect()
}

/// A workflow component may request read access and nothing else.
fn check_read_only(manifest: &toml::Value, path: &Path) {
    let Some(capabilities) = manifest.get("capabilities").and_then(|c| c.as_table()) else {
        return;
    };
    for (key, value) in capabilities {
        let empty = value.as_array().is_some_and(|a| a.is_empty());
        assert!(
            key == "read" || empty,
            "{}: a workflow component may only request `read` access, not `{key}`",
            path.display()
        );
    }
}
