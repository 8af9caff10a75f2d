//! Requests read access to `updir`, a path inside the workspace, which the default grant (the
//! workspace, read-only) covers. The test makes `updir` a symlink to the workspace's parent: the
//! host must not mount what the symlink points at. Passes with "contained: ..." when nothing
//! outside was reachable, fails with "ESCAPED: ..." otherwise.
use greenlight_gate::{Gate, GateResult, Input, Verdict};

struct Subdir;

impl Gate for Subdir {
    fn verify(_input: Input) -> GateResult {
        let mut escaped = Vec::new();
        let mut contained = Vec::new();
        match std::fs::read_dir("updir") {
            Ok(entries) => {
                let names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                escaped.push(format!("listed updir: {names:?}"));
            }
            Err(e) => contained.push(format!("list updir: {e}")),
        }
        match std::fs::read_to_string("updir/secret.txt") {
            Ok(text) => escaped.push(format!("read updir/secret.txt: {} bytes", text.len())),
            Err(e) => contained.push(format!("read updir/secret.txt: {e}")),
        }
        if escaped.is_empty() {
            Ok(Verdict::pass(format!("contained: {}", contained.join("; "))))
        } else {
            Ok(Verdict::fail(format!("ESCAPED: {}", escaped.join("; "))))
        }
    }
}

greenlight_gate::export_gate!(Subdir);
