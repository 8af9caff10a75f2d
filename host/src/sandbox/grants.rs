//! The two-party capability decision: a component *requests* capabilities in its manifest, the
//! person running it *grants* them; the component gets a requested capability only if a grant
//! covers it. Anything requested and not granted refuses the run before instantiation, naming
//! the flag that would grant it. This module is pure policy: no wasmtime, and no I/O but
//! resolving requested paths (so a symlink inside the workspace cannot carry a mount outside it).

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One argument pattern of an exec capability.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ArgPattern {
    /// Exactly this argument.
    Literal(String),
    /// Any one argument.
    One,
    /// Any number of remaining arguments (only last).
    Rest,
}

/// `PROGRAM ARG...`, where an ARG is a literal, `*` (exactly one argument) or a trailing `**`
/// (all remaining arguments, possibly none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecPattern {
    program: String,
    args: Vec<ArgPattern>,
}

impl ExecPattern {
    pub fn parse(text: &str) -> Result<ExecPattern, String> {
        let mut words = text.split_whitespace();
        let program = words
            .next()
            .ok_or_else(|| "an exec pattern needs a program, e.g. 'git status **'".to_string())?
            .to_string();
        if program.contains('*') {
            return Err(format!("exec pattern '{text}': the program must be named, not a wildcard"));
        }
        let words: Vec<&str> = words.collect();
        let mut args = Vec::with_capacity(words.len());
        for (i, word) in words.iter().enumerate() {
            args.push(match *word {
                "*" => ArgPattern::One,
                "**" if i + 1 == words.len() => ArgPattern::Rest,
                "**" => return Err(format!("exec pattern '{text}': `**` may only come last")),
                w if w.contains('*') => {
                    return Err(format!(
                        "exec pattern '{text}': `{w}` mixes text and `*`; use `*` for one whole argument"
                    ));
                }
                w => ArgPattern::Literal(w.to_string()),
            });
        }
        Ok(ExecPattern { program, args })
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// Does this call match the pattern?
    pub fn matches(&self, program: &str, args: &[String]) -> bool {
        if program != self.program {
            return false;
        }
        for (i, pattern) in self.args.iter().enumerate() {
            match pattern {
                ArgPattern::Rest => return true,
                ArgPattern::One if i < args.len() => {}
                ArgPattern::Literal(lit) if args.get(i) == Some(lit) => {}
                _ => return false,
            }
        }
        args.len() == self.args.len()
    }

    /// Does every call this `request` allows also match `self`?
    pub fn covers(&self, request: &ExecPattern) -> bool {
        if self.program != request.program {
            return false;
        }
        for (i, mine) in self.args.iter().enumerate() {
            let theirs = request.args.get(i);
            match (mine, theirs) {
                (ArgPattern::Rest, _) => return true,
                (ArgPattern::One, Some(ArgPattern::One | ArgPattern::Literal(_))) => {}
                (ArgPattern::Literal(a), Some(ArgPattern::Literal(b))) if a == b => {}
                _ => return false,
            }
        }
        request.args.len() == self.args.len()
    }
}

impl fmt::Display for ExecPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for arg in &self.args {
            match arg {
                ArgPattern::Literal(s) => write!(f, " {s}")?,
                ArgPattern::One => f.write_str(" *")?,
                ArgPattern::Rest => f.write_str(" **")?,
            }
        }
        Ok(())
    }
}

impl Serialize for ExecPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ExecPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ExecPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What a component asks for (from its manifest). Paths are guest paths: relative ones are
/// inside the workspace ("." is the workspace itself), absolute ones are host paths outside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requests {
    #[serde(default)]
    pub read: Vec<String>,
    #[serde(default)]
    pub write: Vec<String>,
    #[serde(default)]
    pub exec: Vec<ExecPattern>,
}

impl Requests {
    pub fn is_empty(&self) -> bool {
        self.read.is_empty() && self.write.is_empty() && self.exec.is_empty()
    }
}

/// What the person running a component allows. Host paths, absolute after [`Grants::resolve`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Grants {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
    pub exec: Vec<ExecPattern>,
}

impl Grants {
    /// The default grant: the workspace, read-only. Nothing else.
    pub fn workspace_read_only(workspace: &Path) -> Grants {
        Grants { read: vec![workspace.to_path_buf()], ..Grants::default() }
    }

    /// Everything requested: for built-in gates, which ship inside greenlight and are trusted
    /// exactly as much as greenlight itself.
    pub fn everything_requested(requests: &Requests, workspace: &Path) -> Grants {
        let to_host = |p: &String| guest_to_host(p, workspace);
        Grants {
            read: requests.read.iter().filter_map(to_host).collect(),
            write: requests.write.iter().filter_map(to_host).collect(),
            exec: requests.exec.clone(),
        }
    }
}

/// A directory the component will see, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// Absolute host path.
    pub host: PathBuf,
    /// The name the guest opens it by ("." for the workspace).
    pub guest: String,
    pub writable: bool,
}

/// The capabilities in force for one run: the requested ones, each covered by a grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Effective {
    pub mounts: Vec<Mount>,
    pub exec: Vec<ExecPattern>,
}

impl Effective {
    /// The first effective pattern allowing this call, if any.
    pub fn exec_allows(&self, program: &str, args: &[String]) -> Option<&ExecPattern> {
        self.exec.iter().find(|p| p.matches(program, args))
    }
}

/// A requested capability that no grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub kind: &'static str,
    pub what: String,
    pub flag: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The request comes from the component's manifest: control characters are shown
        // escaped, so a manifest cannot disguise what it asks for.
        write!(f, "{} {} (grant it with {})", self.kind, shown(&self.what), shown(&self.flag))
    }
}

fn shown(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() { c.escape_default().collect() } else { vec![c] };
            escaped
        })
        .collect()
}

/// Every request not covered by a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotGranted(pub Vec<Missing>);

impl fmt::Display for NotGranted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the component requests capabilities that were not granted:")?;
        for m in &self.0 {
            writeln!(f, "  - {m}")?;
        }
        write!(f, "nothing was run; inspect what it requests with `greenlight gate inspect`")
    }
}

impl std::error::Error for NotGranted {}

/// Intersect requests with grants. Paths must already be absolute (`workspace` too).
pub fn decide(requests: &Requests, grants: &Grants, workspace: &Path) -> Result<Effective, NotGranted> {
    let mut effective = Effective::default();
    let mut missing = Vec::new();

    let mut mount = |guest: &String, writable: bool, granted: &[PathBuf]| {
        let (kind, flag) = if writable { ("write", "--grant-write") } else { ("read", "--grant-read") };
        let Some(host) = guest_to_host(guest, workspace) else {
            missing.push(Missing {
                kind,
                what: format!("{guest} (a path that leaves the workspace through `..`)"),
                flag: "nothing: such a request is never granted".into(),
            });
            return;
        };
        // What is mounted is the directory the path leads to: a symlink is followed here, once,
        // and the place it leads must be granted (grants are resolved paths too). A write grant
        // also allows reading.
        let resolved = host.canonicalize().unwrap_or_else(|_| host.clone());
        if granted.iter().any(|g| resolved.starts_with(g)) {
            effective.mounts.push(Mount { guest: guest_name(guest), host: resolved, writable });
        } else if resolved != host {
            missing.push(Missing {
                kind,
                what: format!("{guest} (which resolves to {})", resolved.display()),
                flag: format!("{flag} {}", resolved.display()),
            });
        } else {
            missing.push(Missing { kind, what: guest.clone(), flag: format!("{flag} {}", host.display()) });
        }
    };
    let readable: Vec<PathBuf> = grants.read.iter().chain(&grants.write).cloned().collect();
    for path in &requests.read {
        mount(path, false, &readable);
    }
    for path in &requests.write {
        mount(path, true, &grants.write);
    }
    for request in &requests.exec {
        if grants.exec.iter().any(|g| g.covers(request)) {
            effective.exec.push(request.clone());
        } else {
            missing.push(Missing {
                kind: "exec",
                what: format!("'{request}'"),
                flag: format!("--grant-exec '{request}'"),
            });
        }
    }
    if missing.is_empty() { Ok(effective) } else { Err(NotGranted(missing)) }
}

/// The guest name for a requested path: "." for the workspace, relative paths normalized.
fn guest_name(guest: &str) -> String {
    if Path::new(guest).is_absolute() {
        return guest.to_string();
    }
    let normal: PathBuf = Path::new(guest).components().filter(|c| *c != Component::CurDir).collect();
    if normal.as_os_str().is_empty() { ".".into() } else { normal.to_string_lossy().into_owned() }
}

/// The host path for a guest path; `None` if a relative path climbs out of the workspace.
fn guest_to_host(guest: &str, workspace: &Path) -> Option<PathBuf> {
    let path = Path::new(guest);
    if path.is_absolute() {
        return Some(normalize(path));
    }
    let mut out = workspace.to_path_buf();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Lexical normalization (no symlink resolution: WASI preopens refuse symlink escapes).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> ExecPattern {
        ExecPattern::parse(s).unwrap()
    }
    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn star_matches_exactly_one_argument_and_double_star_the_rest() {
        let p = pat("git diff * --stat");
        assert!(p.matches("git", &argv("diff HEAD --stat")));
        assert!(!p.matches("git", &argv("diff --stat")));
        assert!(!p.matches("git", &argv("diff HEAD --stat --output=x")));
        let p = pat("git status **");
        assert!(p.matches("git", &argv("status")));
        assert!(p.matches("git", &argv("status --porcelain -z")));
        assert!(!p.matches("git", &argv("-c core.pager=evil status")));
        assert!(!p.matches("git", &argv("--upload-pack=evil status")));
        assert!(!p.matches("sh", &argv("status")));
    }

    #[test]
    fn a_pattern_without_wildcards_matches_only_itself() {
        let p = pat("yes");
        assert!(p.matches("yes", &[]));
        assert!(!p.matches("yes", &argv("no")));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        assert!(ExecPattern::parse("").is_err());
        assert!(ExecPattern::parse("* status").is_err());
        assert!(ExecPattern::parse("git ** status").is_err());
        assert!(ExecPattern::parse("git --out=*").is_err());
    }

    #[test]
    fn a_grant_covers_a_request_only_if_it_allows_every_call_of_it() {
        assert!(pat("git **").covers(&pat("git status **")));
        assert!(pat("git status **").covers(&pat("git status --porcelain")));
        assert!(pat("git * *").covers(&pat("git diff HEAD")));
        assert!(!pat("git status **").covers(&pat("git **")));
        assert!(!pat("git status").covers(&pat("git status **")));
        assert!(!pat("git *").covers(&pat("git **")));
        assert!(!pat("git diff HEAD").covers(&pat("git diff *")));
        assert!(!pat("curl **").covers(&pat("git **")));
    }

    #[test]
    fn effective_capabilities_are_requests_covered_by_grants() {
        let ws = Path::new("/w");
        let requests =
            Requests { read: vec![".".into()], write: vec!["out".into()], exec: vec![pat("git status **")] };
        let grants = Grants { read: vec![ws.into()], write: vec![ws.join("out")], exec: vec![pat("git **")] };
        let eff = decide(&requests, &grants, ws).unwrap();
        assert_eq!(
            eff.mounts,
            vec![
                Mount { host: "/w".into(), guest: ".".into(), writable: false },
                Mount { host: "/w/out".into(), guest: "out".into(), writable: true },
            ]
        );
        assert!(eff.exec_allows("git", &argv("status -z")).is_some());
        assert!(eff.exec_allows("git", &argv("push")).is_none(), "granted `git **`, requested only status");
    }

    #[test]
    fn ungranted_requests_name_the_flag_that_grants_them() {
        let ws = Path::new("/w");
        let requests =
            Requests { read: vec!["/etc".into()], write: vec!["out".into()], exec: vec![pat("curl **")] };
        let err = decide(&requests, &Grants::workspace_read_only(ws), ws).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--grant-read /etc"), "{text}");
        assert!(text.contains("--grant-write /w/out"), "{text}");
        assert!(text.contains("--grant-exec 'curl **'"), "{text}");
        assert_eq!(err.0.len(), 3);
    }

    #[test]
    fn a_requested_path_is_granted_by_where_it_leads_not_by_its_name() {
        let root = tempfile::tempdir().unwrap();
        let ws = root.path().canonicalize().unwrap().join("ws");
        std::fs::create_dir_all(ws.join("real")).unwrap();
        std::os::unix::fs::symlink("..", ws.join("updir")).unwrap();
        std::os::unix::fs::symlink("real", ws.join("alias")).unwrap();
        let grants = Grants::workspace_read_only(&ws);

        let escape = Requests { read: vec!["updir".into()], ..Requests::default() };
        let err = decide(&escape, &grants, &ws).unwrap_err().to_string();
        assert!(err.contains("updir (which resolves to"), "{err}");

        let inside = Requests { read: vec!["alias".into()], ..Requests::default() };
        let eff = decide(&inside, &grants, &ws).unwrap();
        assert_eq!(eff.mounts[0].host, ws.join("real"), "the resolved directory is what gets mounted");
    }

    #[test]
    fn requests_that_climb_out_of_the_workspace_are_never_granted() {
        let ws = Path::new("/w");
        let requests = Requests { read: vec!["../secrets".into()], ..Requests::default() };
        let grants = Grants { read: vec!["/".into()], ..Grants::default() };
        assert!(decide(&requests, &grants, ws).is_err());
    }
}
