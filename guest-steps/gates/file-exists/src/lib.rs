//! `builtin:file-exists`: passes when every given path exists inside the workspace.
//!
//! The workspace is the gate's current directory (a read-only preopen), so relative paths
//! resolve inside it; a symlink that leads out of it cannot be followed and counts as missing.
use greenlight_gate::{Finding, Gate, GateError, GateResult, Input, Verdict};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::fmt;
use std::fs;
use std::io::ErrorKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(deserialize_with = "string_or_list")]
    paths: Vec<String>,
}

/// Accepts `"README.md"` as well as `["README.md", "src/"]`.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a path or a list of paths")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// Refuses what cannot name something inside the workspace, saying why.
fn check(raw: &str) -> Result<(), GateError> {
    if raw.is_empty() {
        return Err(GateError::new("`paths` has an empty path"));
    }
    let b = raw.as_bytes();
    if raw.starts_with('/')
        || raw.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
    {
        return Err(GateError::new(format!(
            "{raw:?} is an absolute path; paths must be relative to the workspace"
        )));
    }
    if raw.split(['/', '\\']).any(|part| part == "..") {
        return Err(GateError::new(format!(
            "{raw:?} contains `..`, which would leave the workspace; paths must stay inside it"
        )));
    }
    if raw.chars().any(char::is_control) {
        return Err(GateError::new(format!("{raw:?} contains a control character")));
    }
    Ok(())
}

/// "a, b, c and 2 more"
fn list_some(items: &[&str], max: usize) -> String {
    let mut s = items.iter().take(max).copied().collect::<Vec<_>>().join(", ");
    if items.len() > max {
        s.push_str(&format!(" and {} more", items.len() - max));
    }
    s
}

struct FileExists;

impl Gate for FileExists {
    fn verify(input: Input) -> GateResult {
        let params: Params = input.params()?;
        if params.paths.is_empty() {
            return Err(GateError::new("`paths` is empty; give at least one path to check"));
        }
        for p in &params.paths {
            check(p)?;
        }

        let mut findings = Vec::new();
        let mut missing = Vec::new();
        let mut evidence = String::new();
        for p in &params.paths {
            let want_dir = p.ends_with('/');
            let path = p.trim_end_matches('/');
            let is_symlink = || fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            let problem = match fs::metadata(path) {
                Ok(m) if want_dir && !m.is_dir() => Some("is not a directory".to_string()),
                Ok(_) => None,
                Err(e) if e.kind() == ErrorKind::NotFound && is_symlink() => {
                    Some("is a symlink to nothing".to_string())
                }
                Err(e) if e.kind() == ErrorKind::NotFound => Some("does not exist".to_string()),
                // The sandbox does not follow a symlink out of the workspace.
                Err(e) if is_symlink() => {
                    Some(format!("is a symlink that cannot be followed inside the workspace: {e}"))
                }
                Err(e) => Some(format!("cannot be reached inside the workspace: {e}")),
            };
            match problem {
                None => evidence.push_str(&format!("present: {p}\n")),
                Some(why) => {
                    evidence.push_str(&format!("missing: {p}: {why}\n"));
                    findings.push(Finding::error(format!("{p} {why}")).at(p.clone(), None));
                    missing.push(p.as_str());
                }
            }
        }

        let n = params.paths.len();
        if missing.is_empty() {
            let summary =
                if n == 1 { format!("{} exists", params.paths[0]) } else { format!("all {n} paths exist") };
            return Ok(Verdict::pass(summary).with_evidence(evidence));
        }
        let summary = if n == 1 {
            findings[0].message.clone()
        } else {
            format!("{} of {n} missing: {}", missing.len(), list_some(&missing, 5))
        };
        Ok(Verdict::fail(summary).with_findings(findings).with_evidence(evidence))
    }
}

greenlight_gate::export_gate!(FileExists);
