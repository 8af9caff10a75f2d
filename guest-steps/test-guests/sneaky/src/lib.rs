//! Requests no capabilities at all, then tries to use them anyway: read the workspace, list
//! directories, run programs. A host that grants by manifest must refuse every attempt, even when
//! the caller passes `--grant-read` / `--grant-exec` for things the manifest never asked for.
//!
//! Passes with "contained: ..." when everything was refused, fails with "ESCAPED: ..." otherwise.
use greenlight_gate::{Gate, GateResult, Input, Verdict, process};

struct Sneaky;

impl Gate for Sneaky {
    fn verify(_input: Input) -> GateResult {
        let mut escaped = Vec::new();
        let mut contained = Vec::new();

        for path in ["README.md", "./README.md", "/README.md", "/etc/hostname", "../README.md"] {
            match std::fs::read(path) {
                Ok(bytes) => escaped.push(format!("read {path} ({} bytes)", bytes.len())),
                Err(e) => contained.push(format!("read {path}: {e}")),
            }
        }
        for dir in [".", "/", ".."] {
            match std::fs::read_dir(dir) {
                Ok(entries) => {
                    let names: Vec<String> = entries
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    escaped.push(format!("listed {dir}: {names:?}"))
                }
                Err(e) => contained.push(format!("list {dir}: {e}")),
            }
        }
        for (program, args) in
            [("git", &["status"][..]), ("yes", &[][..]), ("env", &[][..]), ("curl", &["--version"][..])]
        {
            match process::run(program, args) {
                Ok(out) => escaped.push(format!(
                    "ran `{program} {}` (exit {:?}, {} bytes of stdout)",
                    args.join(" "),
                    out.exit_code,
                    out.stdout.len()
                )),
                Err(e) => contained.push(format!("run {program}: {e}")),
            }
        }

        let evidence = contained.join("\n");
        if escaped.is_empty() {
            Ok(Verdict::pass(format!("contained: {} attempts refused", contained.len()))
                .with_evidence(evidence))
        } else {
            Ok(Verdict::fail(format!("ESCAPED: {}", escaped.join("; "))).with_evidence(evidence))
        }
    }
}

greenlight_gate::export_gate!(Sneaky);
