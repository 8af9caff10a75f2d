//! Builds guest-steps/ for wasm32-wasip2 and embeds each gate's manifest (gate.toml) into its
//! component, the same way `greenlight gate build` does. The built-in gates (guest-steps/gates)
//! are compiled into the binary; the test guests (guest-steps/test-guests) are left in OUT_DIR
//! for the test suite (GREENLIGHT_TEST_GUESTS_DIR).

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

#[path = "src/sandbox/manifest/section.rs"]
mod section;

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
}

fn build_guests(guests: &Path, target_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(target_dir)
        .current_dir(guests);
    // This is a separate build for another target: nothing of the outer build's flags applies.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
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

struct Embedded {
    name: String,
    path: PathBuf,
    sha256: String,
}

/// For each crate under `dir`: its built .wasm with gate.toml embedded, written to `out`.
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
            let manifest_path = krate.join("gate.toml");
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
            let json = serde_json::to_vec(&manifest).unwrap();
            let wasm_file = wasm_dir.join(format!("{}.wasm", name.replace('-', "_")));
            let wasm = std::fs::read(&wasm_file).unwrap_or_else(|e| panic!("{}: {e}", wasm_file.display()));
            let embedded = section::append_manifest(&wasm, &json);
            let path = out.join(format!("{name}.wasm"));
            std::fs::write(&path, &embedded).unwrap();
            Embedded { name, path, sha256: hex::encode(Sha256::digest(&embedded)) }
        })
        .collect()
}
