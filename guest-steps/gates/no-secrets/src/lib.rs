//! `builtin:no-secrets`: fails when the working-tree change adds something that looks like a
//! credential: a private key, a cloud or API token of a known format, or a high-entropy value
//! assigned to a name that says secret.
//!
//! What is scanned:
//! - tracked changes: the added lines of `git diff HEAD` (the working tree against the last
//!   commit, staged or not), then those of `git diff --cached` (what is staged, in case the
//!   working tree no longer has it);
//! - in a repository without commits: every file in the index, read from the working tree, then
//!   the staged content;
//! - untracked files that are not ignored, read whole.
//!
//! Binary files and files over 1 MiB are skipped, and the evidence says which. Findings name the
//! file and line and show only the first few characters of a secret.

mod exclude;
mod git;
mod rules;

use exclude::Exclude;
use greenlight_gate::{Finding, Gate, GateError, GateResult, Input, Verdict};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    exclude: Vec<String>,
}

/// Files larger than this are not read (noted in the evidence).
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Findings named in the one-line summary.
const IN_SUMMARY: usize = 3;
/// Findings reported at most (the count says how many more there were).
const MAX_FINDINGS: usize = 200;

struct NoSecrets;

impl Gate for NoSecrets {
    fn verify(input: Input) -> GateResult {
        let params: Params = input.params()?;
        let exclude = Exclude::new(&params.exclude).map_err(GateError::new)?;
        let mut scan = Scan::new(exclude);

        let head = git::has_head()?;
        if head {
            let diff = git::diff("HEAD")?;
            scan.diff(&diff, Source::WorkTree);
        } else {
            // Nothing is committed: every file in the index is new, all of it.
            for path in git::ls_files(&["--cached"])? {
                scan.file(&path, Source::WorkTree);
            }
        }
        let staged = git::diff("--cached")?;
        scan.diff(&staged, Source::Index);
        for path in git::ls_files(&["--others", "--exclude-standard"])? {
            scan.file(&path, Source::Untracked);
        }
        Ok(scan.verdict(head))
    }
}

greenlight_gate::export_gate!(NoSecrets);

/// Where a scanned line came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The working tree's version of a tracked file (line numbers are the file's).
    WorkTree,
    /// The staged version (line numbers are those of the staged content).
    Index,
    /// An untracked file.
    Untracked,
}

struct Found {
    path: String,
    line: u32,
    kind: &'static str,
    message: String,
}

struct Scan {
    exclude: Exclude,
    found: Vec<Found>,
    /// (path, kind, secret): the same secret in the same file is reported once, at the first
    /// place seen (the working tree before the index).
    seen: HashSet<(String, &'static str, String)>,
    /// Files scanned, and how many of their lines (working tree and untracked).
    files: BTreeMap<String, u64>,
    /// Lines of staged content scanned.
    staged_lines: u64,
    /// Why files were not scanned: path → reason.
    skipped: BTreeMap<String, String>,
    excluded: BTreeSet<String>,
}

impl Scan {
    fn new(exclude: Exclude) -> Scan {
        Scan {
            exclude,
            found: Vec::new(),
            seen: HashSet::new(),
            files: BTreeMap::new(),
            staged_lines: 0,
            skipped: BTreeMap::new(),
            excluded: BTreeSet::new(),
        }
    }

    fn is_excluded(&mut self, path: &str) -> bool {
        if self.exclude.matching(path).is_some() {
            self.excluded.insert(path.to_string());
            return true;
        }
        false
    }

    fn diff(&mut self, diff: &str, source: Source) {
        let files = git::added_lines(diff, |path, line, text| {
            if !self.is_excluded(path) {
                self.line(path, line, text, source);
            }
        });
        for path in files.binary {
            if !self.is_excluded(&path) {
                self.skipped.entry(path).or_insert_with(|| "binary (per git)".to_string());
            }
        }
    }

    /// Read a whole file from the workspace and scan every line.
    fn file(&mut self, path: &str, source: Source) {
        if self.is_excluded(path) || self.files.contains_key(path) {
            return;
        }
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            // Staged, then deleted from the working tree: the staged diff covers it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.skip(path, format!("could not be read: {e}"));
                return;
            }
        };
        if !meta.is_file() {
            // A symlink (git stores its target, not a file's content) or a nested repository.
            let what = if meta.is_symlink() { "a symbolic link" } else { "not a regular file" };
            self.skip(path, what.to_string());
            return;
        }
        if meta.len() > MAX_FILE_BYTES {
            self.skip(path, format!("larger than 1 MiB ({} bytes)", meta.len()));
            return;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.skip(path, format!("could not be read: {e}"));
                return;
            }
        };
        if bytes.contains(&0) {
            self.skip(path, "binary (has NUL bytes)".to_string());
            return;
        }
        let text = String::from_utf8_lossy(&bytes);
        self.files.entry(path.to_string()).or_insert(0);
        for (i, line) in text.lines().enumerate() {
            let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
            self.line(path, number, line, source);
        }
    }

    fn skip(&mut self, path: &str, why: String) {
        self.skipped.insert(path.to_string(), why);
    }

    fn line(&mut self, path: &str, number: u32, text: &str, source: Source) {
        match source {
            Source::Index => self.staged_lines += 1,
            Source::WorkTree | Source::Untracked => {
                *self.files.entry(path.to_string()).or_insert(0) += 1;
            }
        }
        for hit in rules::scan_line(text) {
            let secret = &text[hit.start..hit.end];
            if !self.seen.insert((path.to_string(), hit.kind, secret.to_string())) {
                continue;
            }
            let mut message = format!("possible {}", hit.kind);
            if hit.redact {
                let _ = write!(message, ": {}", rules::redact(secret));
            }
            if let Some(detail) = &hit.detail {
                let _ = write!(message, " ({detail})");
            }
            match source {
                Source::Index => message.push_str("; in the staged version of the file"),
                Source::Untracked => message.push_str("; in an untracked file"),
                Source::WorkTree => {}
            }
            self.found.push(Found { path: path.to_string(), line: number, kind: hit.kind, message });
        }
    }

    fn verdict(self, head: bool) -> Verdict {
        let lines: u64 = self.files.values().sum();
        let nfiles = self.files.len();
        let plural = |n: usize, one: &str, many: &str| {
            if n == 1 { one.to_string() } else { many.to_string() }
        };

        let mut evidence = String::new();
        let _ = writeln!(
            evidence,
            "Scanned: {}.",
            if head {
                "the added lines of `git diff HEAD` and `git diff --cached`, and untracked files"
            } else {
                "every file in the index (the repository has no commits yet), the staged content, and untracked files"
            }
        );
        let _ = writeln!(
            evidence,
            "{nfiles} {} ({lines} {}; {} staged {} checked again).",
            plural(nfiles, "file", "files"),
            plural(lines as usize, "line", "lines"),
            self.staged_lines,
            plural(self.staged_lines as usize, "line", "lines"),
        );
        const LIST: usize = 100;
        for (path, &n) in self.files.iter().take(LIST) {
            let _ = writeln!(evidence, "  {path} ({n} {})", plural(n as usize, "line", "lines"));
        }
        if nfiles > LIST {
            let _ = writeln!(evidence, "  ... and {} more", nfiles - LIST);
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(evidence, "Not scanned:");
            for (path, why) in self.skipped.iter().take(LIST) {
                let _ = writeln!(evidence, "  {path}: {why}");
            }
            if self.skipped.len() > LIST {
                let _ = writeln!(evidence, "  ... and {} more", self.skipped.len() - LIST);
            }
        }
        if !self.excluded.is_empty() {
            let _ =
                writeln!(evidence, "Excluded by the `exclude` parameter: {} file(s).", self.excluded.len());
            for path in self.excluded.iter().take(20) {
                let _ = writeln!(evidence, "  {path}");
            }
        }

        let skipped_note = match self.skipped.len() {
            0 => String::new(),
            n => format!("; {n} {} not scanned", plural(n, "file", "files")),
        };
        if self.found.is_empty() {
            let summary = if nfiles == 0 && self.staged_lines == 0 {
                format!("no secrets found: no changed files to scan{skipped_note}")
            } else {
                format!(
                    "no secrets found in {nfiles} {} ({lines} {} scanned{skipped_note})",
                    plural(nfiles, "file", "files"),
                    plural(lines as usize, "line", "lines")
                )
            };
            return Verdict::pass(summary).with_evidence(evidence);
        }

        let n = self.found.len();
        let in_files: BTreeSet<&str> = self.found.iter().map(|f| f.path.as_str()).collect();
        let places: Vec<String> = self
            .found
            .iter()
            .take(IN_SUMMARY)
            .map(|f| format!("{}:{} ({})", f.path, f.line, f.kind))
            .collect();
        let more = if n > IN_SUMMARY { format!(", and {} more", n - IN_SUMMARY) } else { String::new() };
        let summary = format!(
            "{n} possible {} in {} {}: {}{more}",
            plural(n, "secret", "secrets"),
            in_files.len(),
            plural(in_files.len(), "file", "files"),
            places.join(", ")
        );
        if n > MAX_FINDINGS {
            let _ = writeln!(evidence, "Only the first {MAX_FINDINGS} of {n} findings are listed.");
        }
        let _ = writeln!(
            evidence,
            "Remove the secret from the change (and rotate it if it was real), or exclude test fixtures with the `exclude` parameter."
        );
        let findings = self
            .found
            .into_iter()
            .take(MAX_FINDINGS)
            .map(|f| Finding::error(f.message).at(f.path, Some(f.line)));
        Verdict::fail(summary).with_findings(findings).with_evidence(evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_duplicates_are_reported_once() {
        let mut scan = Scan::new(Exclude::new(&[]).unwrap());
        let key = format!("{}{}", "AKIA", "Q".repeat(16));
        scan.line("a.env", 3, &format!("K={key}"), Source::WorkTree);
        scan.line("a.env", 1, &format!("K={key}"), Source::Index);
        assert_eq!(scan.found.len(), 1);
        assert_eq!(scan.found[0].line, 3);
        assert!(!scan.found[0].message.contains(&key));
    }
}
