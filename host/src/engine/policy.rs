//! Untrusted workflows: a workflow the person running it did not write may make the host do only
//! what that person granted.
//!
//! A run is [`Trust::Trusted`] or [`Trust::Untrusted`] with a [`Policy`]: the grants of the
//! person running it (`--grant-exec`, `--grant-agent`, `--grant-write`, `--grant-read`,
//! `--grant-env`, `--grant-net`, or `greenlight.policy.toml`). Before an untrusted run starts,
//! everything its workflow will ask for ([`Asks`]) is checked against the policy, and the run is
//! refused, naming each missing grant and the flag that grants it, unless every ask is granted.
//! While it runs:
//!
//! - a `run:` command executes **without a shell** ([`CommandLine`]): it is split into words the
//!   way `sh` splits them, each `{{ ... }}` renders into exactly one argument (never split, never
//!   read as syntax), and the program is found on PATH. A command that needs the shell (`;`, `|`,
//!   `&&`, redirections, `$VAR`, globs, several lines...) asks for `sh -c COMMAND` instead, which
//!   only `--grant-exec 'sh -c *'` grants (templates are then quoted for the shell as in a trusted
//!   run);
//! - every process is checked against the policy again as it starts (its rendered argv, its
//!   resolved program), so a value from an earlier step can never become a command;
//! - native processes get the documented base environment with `HOME` and `TMPDIR` in the run's
//!   private temp dir (outside the workspace, removed when the run ends), and only the variables
//!   granted with `--grant-env` beyond it;
//! - they are confined by the native layer (Landlock, a private network namespace): they may
//!   write the workspace and what `--grant-write` names, read what they may write, what
//!   `--grant-read` names and the folders of their granted programs; the runner's home, `/root`
//!   and `/home` are hidden, the workspace's `.git` and `.greenlight` (its hooks and config, the
//!   run store) are read-only, and the network is off unless `--grant-net`.
//!
//! Patterns are those of `greenlight gate run --grant-exec` ([`ExecPattern`]): `PROGRAM ARG...`
//! where `*` is one argument and a trailing `**` any remaining ones. The program in a pattern
//! matches a program as the workflow writes it (`node`, `./build.sh`) or, written as an absolute
//! path, the program that name resolves to. An agent pattern that is only a program grants the
//! agent with any arguments.

use std::ffi::{OsStr, OsString};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::env;
use super::render::{self, MAX_ARG_BYTES, RenderError, Values};
use crate::native::confine::{self, Confinement, PreparedConfinement};
use crate::sandbox::grants::{ExecPattern, normalize};
use crate::spec::template::{self, Part, Reference};
use crate::spec::{Action, AgentKind, Workflow};

/// The policy file greenlight reads from the workspace root when it exists.
pub const POLICY_FILE: &str = "greenlight.policy.toml";

/// Whether a run's workflow is trusted, and if not, what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The workflow may do anything greenlight's own steps do (the person wrote or reviewed it).
    Trusted,
    /// The workflow may make the host do only what the policy grants.
    Untrusted(Policy),
}

impl Trust {
    /// The policy of an untrusted run.
    pub fn policy(&self) -> Option<&Policy> {
        match self {
            Trust::Trusted => None,
            Trust::Untrusted(policy) => Some(policy),
        }
    }

    /// As the run store keeps it: the policy as JSON, `None` for a trusted run.
    pub fn to_stored(&self) -> Option<String> {
        self.policy().map(|p| serde_json::to_string(p).expect("a policy serializes"))
    }

    /// What [`Trust::to_stored`] kept: a resumed run goes on with the trust it started with.
    pub fn from_stored(stored: Option<&str>) -> anyhow::Result<Trust> {
        match stored {
            None => Ok(Trust::Trusted),
            Some(json) => Ok(Trust::Untrusted(
                serde_json::from_str(json).context("the grants recorded with the run are not readable")?,
            )),
        }
    }
}

/// Why a workflow file is untrusted when nothing says otherwise: it is a workflow component
/// (`.wasm`), or it lies outside the workspace. `None`: trusted by default. Both paths must be
/// canonical.
pub fn untrusted_by_default(file: &Path, workspace: &Path) -> Option<&'static str> {
    if file.extension().is_some_and(|e| e == "wasm") {
        Some("it is a workflow component (.wasm)")
    } else if !file.starts_with(workspace) {
        Some("the workflow file lies outside the workspace")
    } else {
        None
    }
}

/// What the person running an untrusted workflow grants it. Paths are absolute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Commands `run:` steps may run (`--grant-exec`).
    #[serde(default)]
    pub exec: Vec<ExecPattern>,
    /// Agents the workflow may start (`--grant-agent`): a CLI by name (`claude`), a command
    /// agent by its program and arguments.
    #[serde(default)]
    pub agents: Vec<ExecPattern>,
    /// Paths native steps may write besides the workspace (`--grant-write`).
    #[serde(default)]
    pub write: Vec<PathBuf>,
    /// Paths native steps may read besides the workspace (`--grant-read`).
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// Environment variables agents may have passed through (`--grant-env`).
    #[serde(default)]
    pub env: Vec<String>,
    /// Native steps may use the network (`--grant-net`).
    #[serde(default)]
    pub net: bool,
    /// Run even when the kernel cannot confine native steps (`--allow-unconfined`).
    #[serde(default)]
    pub allow_unconfined: bool,
    /// The policy file these grants were read from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// How the run's native processes are confined, decided once by [`check`] (shared by clones).
    #[serde(skip)]
    confined: ConfinedCell,
}

/// How an untrusted run's native processes are confined.
#[derive(Debug, Clone)]
pub enum Confined {
    /// Landlock and (unless `--grant-net`) a private network namespace, prepared once per run.
    Yes(Arc<PreparedConfinement>),
    /// The kernel cannot confine them, and the person allowed that (`--allow-unconfined`); says
    /// what the kernel lacks.
    Unconfined(String),
    /// The kernel cannot confine them: no native process may start. Says what the kernel lacks.
    Unavailable(String),
}

/// What a run prepared for its policy (not part of what it grants: two policies are equal
/// whatever their runs prepared): the confinement, and the private temp dir.
#[derive(Clone, Default)]
struct ConfinedCell(Arc<(OnceLock<Confined>, OnceLock<PrivateTmp>)>);

/// The private temp dir of an untrusted run's native processes (their `HOME` and `TMPDIR`). It
/// lies outside the workspace, so nothing of the run's own record (its logs, its store) needs to
/// be writable to them; it is removed when the run ends.
#[derive(Debug)]
pub struct PrivateTmp(PathBuf);

impl PrivateTmp {
    fn create() -> std::io::Result<PrivateTmp> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        for attempt in 0..16u32 {
            let name =
                format!("greenlight-untrusted-{}-{:x}", std::process::id(), nanos ^ u128::from(attempt));
            let path = std::env::temp_dir().join(name);
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateTmp(path.canonicalize()?)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no free name for a private temp dir"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl PartialEq for ConfinedCell {
    fn eq(&self, _: &ConfinedCell) -> bool {
        true
    }
}

impl Eq for ConfinedCell {}

impl fmt::Debug for ConfinedCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ConfinedCell").field(&self.0.0.get()).field(&self.0.1.get()).finish()
    }
}

/// `greenlight.policy.toml` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    exec: Vec<toml::Spanned<String>>,
    #[serde(default)]
    agents: Vec<toml::Spanned<String>>,
    #[serde(default)]
    write: Vec<toml::Spanned<String>>,
    #[serde(default)]
    read: Vec<toml::Spanned<String>>,
    #[serde(default)]
    env: Vec<toml::Spanned<String>>,
    #[serde(default)]
    net: bool,
}

impl Policy {
    /// Read a policy file (`greenlight.policy.toml`): `exec`, `agents`, `write`, `read`, `env`
    /// (lists of strings) and `net` (a boolean). Paths may start with `~/` (the home directory)
    /// and are otherwise relative to the file's folder. Errors name the file, line and column.
    pub fn from_file(path: &Path) -> anyhow::Result<Policy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the policy file", path.display()))?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let base =
            base.canonicalize().with_context(|| format!("{}: cannot resolve its folder", path.display()))?;
        let home = dirs::home_dir();
        let mut policy = Policy::parse(&text, &path.display().to_string(), &base, home.as_deref())?;
        policy.file = Some(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
        Ok(policy)
    }

    /// [`Policy::from_file`] for text already read; `file` names it in errors, relative paths
    /// are relative to `base`, `~/` is `home`.
    pub fn parse(text: &str, file: &str, base: &Path, home: Option<&Path>) -> anyhow::Result<Policy> {
        let at = |span: std::ops::Range<usize>| {
            let (line, column) = line_column(text, span.start);
            format!("{file}:{line}:{column}")
        };
        let raw: PolicyFile = toml::from_str(text).map_err(|e| {
            let place = e.span().map_or_else(|| file.to_string(), at);
            anyhow::anyhow!("{place}: {}", e.message().trim_end())
        })?;
        let patterns = |items: &[toml::Spanned<String>], key: &str| -> anyhow::Result<Vec<ExecPattern>> {
            items
                .iter()
                .map(|item| {
                    ExecPattern::parse(item.get_ref())
                        .map_err(|e| anyhow::anyhow!("{}: `{key}`: {e}", at(item.span())))
                })
                .collect()
        };
        let paths = |items: &[toml::Spanned<String>], key: &str| -> anyhow::Result<Vec<PathBuf>> {
            items
                .iter()
                .map(|item| {
                    grant_path(item.get_ref(), base, home)
                        .map_err(|e| anyhow::anyhow!("{}: `{key}`: {e}", at(item.span())))
                })
                .collect()
        };
        let mut env = Vec::new();
        for item in &raw.env {
            check_env_name(item.get_ref()).map_err(|e| anyhow::anyhow!("{}: `env`: {e}", at(item.span())))?;
            env.push(item.get_ref().clone());
        }
        Ok(Policy {
            exec: patterns(&raw.exec, "exec")?,
            agents: patterns(&raw.agents, "agents")?,
            write: paths(&raw.write, "write")?,
            read: paths(&raw.read, "read")?,
            env,
            net: raw.net,
            allow_unconfined: false,
            file: None,
            confined: ConfinedCell::default(),
        })
    }

    /// Add `other`'s grants to these (the command line's flags to a policy file's).
    pub fn merge(&mut self, other: Policy) {
        fn extend<T: PartialEq>(list: &mut Vec<T>, more: Vec<T>) {
            for item in more {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
        }
        extend(&mut self.exec, other.exec);
        extend(&mut self.agents, other.agents);
        extend(&mut self.write, other.write);
        extend(&mut self.read, other.read);
        extend(&mut self.env, other.env);
        self.net |= other.net;
        self.allow_unconfined |= other.allow_unconfined;
        if self.file.is_none() {
            self.file = other.file;
        }
    }

    /// The grants as lines for people (`greenlight show`, `greenlight plan`).
    pub fn describe(&self) -> Vec<String> {
        let list = |items: Vec<String>| if items.is_empty() { "none".to_string() } else { items.join(", ") };
        let paths =
            |items: &[PathBuf]| items.iter().map(|p| format!(", {}", p.display())).collect::<String>();
        let mut lines = vec![
            format!("exec: {}", list(self.exec.iter().map(|p| quoted(&p.to_string())).collect())),
            format!("agents: {}", list(self.agents.iter().map(|p| quoted(&p.to_string())).collect())),
            format!("write: the workspace{}", paths(&self.write)),
            format!("read: all but the home directories{}", paths(&self.read)),
            format!("env: {}", list(self.env.clone())),
            format!("network: {}", if self.net { "granted" } else { "none" }),
        ];
        if self.allow_unconfined {
            lines.push("confinement: may run unconfined (--allow-unconfined)".to_string());
        }
        if let Some(file) = &self.file {
            lines.push(format!("policy file: {}", file.display()));
        }
        lines
    }

    /// How the run's native processes are confined, once [`check`] has decided it.
    pub fn confined(&self) -> Option<&Confined> {
        self.confined.0.0.get()
    }

    /// The run's private temp dir, once the run's confinement is decided.
    pub fn private_tmp(&self) -> Option<&Path> {
        self.confined.0.1.get().map(PrivateTmp::path)
    }

    /// The pattern that grants running `argv` (its program resolved to `resolved`), if any.
    pub fn exec_grant(&self, argv: &[String], resolved: Option<&Path>) -> Option<&ExecPattern> {
        let (program, args) = argv.split_first()?;
        let args: Vec<Arg> = args.iter().map(|a| Arg::Literal(a)).collect();
        self.exec.iter().find(|p| program_matches(p.program(), program, resolved) && pattern_allows(p, &args))
    }

    /// The pattern that grants starting an agent whose argv (as the workflow writes it) is
    /// `argv`, its program resolved to `resolved`.
    pub fn agent_grant(&self, argv: &[String], resolved: Option<&Path>) -> Option<&ExecPattern> {
        let (program, args) = argv.split_first()?;
        let args: Vec<Arg> = args.iter().map(|a| Arg::Literal(a)).collect();
        self.agents.iter().find(|p| {
            program_matches(p.program(), program, resolved)
                && (pattern_tokens(p).is_empty() || pattern_allows(p, &args))
        })
    }
}

/// A granted path: `~/` expanded, relative paths joined to `base`, resolved when it exists.
pub fn grant_path(text: &str, base: &Path, home: Option<&Path>) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("an empty path".to_string());
    }
    let path = if text == "~" || text.starts_with("~/") {
        let home = home.ok_or("`~` is used, but there is no home directory")?;
        home.join(text.trim_start_matches('~').trim_start_matches('/'))
    } else {
        base.join(text)
    };
    let path = normalize(&path);
    Ok(path.canonicalize().unwrap_or(path))
}

/// A name `--grant-env` accepts: letters, digits and `_`, not starting with a digit.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid { Ok(()) } else { Err(format!("{name:?} is not an environment variable name")) }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `'text'` as a shell reads it back.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------------------------
// Patterns, read as tokens.

/// One argument of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `*`: exactly one argument.
    One,
    /// `**` (last): any remaining arguments.
    Rest,
}

/// A pattern's arguments. A pattern's text (its `Display`) is its program and arguments separated
/// by single spaces, a literal never holding whitespace or `*`.
fn pattern_tokens(pattern: &ExecPattern) -> Vec<Token> {
    pattern
        .to_string()
        .split(' ')
        .skip(1)
        .map(|t| match t {
            "*" => Token::One,
            "**" => Token::Rest,
            t => Token::Literal(t.to_string()),
        })
        .collect()
}

/// One argument of an asked-for command: known text, or a template whose value is not known
/// before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg<'a> {
    Literal(&'a str),
    Template,
}

/// Whether every command with these arguments matches the pattern: a template matches only `*`
/// or `**`.
fn pattern_allows(pattern: &ExecPattern, args: &[Arg]) -> bool {
    let tokens = pattern_tokens(pattern);
    for (i, token) in tokens.iter().enumerate() {
        match (token, args.get(i)) {
            (Token::Rest, _) => return true,
            (Token::One, Some(_)) => {}
            (Token::Literal(l), Some(Arg::Literal(a))) if l == a => {}
            _ => return false,
        }
    }
    args.len() == tokens.len()
}

/// Whether a pattern's program names this program: as written, or (an absolute path in the
/// pattern) the file it resolves to.
fn program_matches(pattern: &str, written: &str, resolved: Option<&Path>) -> bool {
    if pattern == written {
        return true;
    }
    let Some(resolved) = resolved else { return false };
    let pattern = Path::new(pattern);
    pattern.is_absolute()
        && (pattern == resolved
            || matches!((pattern.canonicalize(), resolved.canonicalize()), (Ok(a), Ok(b)) if a == b))
}

// ---------------------------------------------------------------------------------------------
// Commands without a shell.

/// A `run:` command as an untrusted run executes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// Words, each one argument; `words[0]` is the program (never a template).
    Argv(Vec<Word>),
    /// The command uses shell syntax (`construct` says which): it runs as `sh -c COMMAND`, its
    /// templates quoted for the shell as in a trusted run.
    Shell { command: String, construct: String },
}

/// One argument: text and templates, rendered together into exactly one argv element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Template { reference: Reference, source: String },
}

impl Word {
    /// The word's text when it holds no template.
    pub fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Template { .. } => return None,
            }
        }
        Some(out)
    }

    /// The word as written, its templates as `{{ ... }}`.
    pub fn shown(&self) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Template { source, .. } => source.as_str(),
            })
            .collect()
    }

    fn has_template(&self) -> bool {
        self.0.iter().any(|p| matches!(p, Piece::Template { .. }))
    }

    fn render(&self, values: &Values) -> Result<String, RenderError> {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Template { reference, .. } => {
                    let value = values.resolve(reference)?;
                    if value.contains('\0') {
                        return Err(RenderError {
                            message: format!(
                                "`{reference}` contains a NUL byte, which no argument can carry"
                            ),
                            offset: None,
                        });
                    }
                    out.push_str(&value);
                }
            }
        }
        if out.len() > MAX_ARG_BYTES {
            return Err(RenderError {
                message: format!(
                    "the argument `{}` renders to {} bytes, more than the {MAX_ARG_BYTES} one argument may \
                     hold; have the earlier step write a file and read that instead",
                    self.shown(),
                    out.len()
                ),
                offset: None,
            });
        }
        Ok(out)
    }
}

/// What the shell would read differently from plain words, by character.
fn construct(c: char) -> Option<&'static str> {
    Some(match c {
        ';' => "`;` (a command list)",
        '|' => "`|` (a pipe)",
        '&' => "`&` (`&&` or a background job)",
        '<' | '>' => "a redirection (`<`, `>`)",
        '(' | ')' => "`(` `)` (a subshell or a function)",
        '`' => "backquotes (a command substitution)",
        '$' => "`$` (a variable, `$( )` or another expansion)",
        '*' | '?' | '[' => "a glob pattern (`*`, `?`, `[`)",
        _ => return None,
    })
}

/// Words that mean something only to a shell when they are the command's first word.
const SHELL_WORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until", "do", "done", "function",
    "select", "time", "!", "{", "}", "[[", "]]", "cd", "export", "unset", "set", "source", ".", "eval",
    "exec", "exit", "return", "shift", "trap", "alias", "unalias", "read", "local", "declare", "typeset",
    "readonly", "ulimit", "umask", "wait", "command", "builtin", "let", "shopt", "pushd", "popd",
];

/// Shells whose `-c` takes a script.
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "busybox"];

enum Tok<'a> {
    Char(char),
    Template(&'a Reference, &'a str),
}

impl CommandLine {
    /// Read a `run:` command as an untrusted run executes it. Errors say why it can never run
    /// untrusted as written (no grant changes that).
    pub fn parse(command: &str) -> Result<CommandLine, String> {
        let parsed = template::parse(command).map_err(|e| e.to_string())?;
        let trimmed_end = command.trim_end().len();
        let mut toks: Vec<Tok> = Vec::new();
        let mut offset = 0;
        for part in &parsed.parts {
            match part {
                Part::Text(text) => {
                    for c in text.chars() {
                        // Trailing whitespace (a YAML block's last line ending) is not a word break.
                        if offset < trimmed_end {
                            toks.push(Tok::Char(c));
                        }
                        offset += c.len_utf8();
                    }
                }
                Part::Expr { reference, source } => {
                    toks.push(Tok::Template(reference, source));
                    offset += source.len();
                }
            }
        }
        let shell = |construct: &str| CommandLine::Shell {
            command: command.to_string(),
            construct: construct.to_string(),
        };
        let mut words: Vec<Word> = Vec::new();
        let mut word: Option<Vec<Piece>> = None;
        let push = |word: &mut Option<Vec<Piece>>, c: char| {
            let pieces = word.get_or_insert_with(Vec::new);
            match pieces.last_mut() {
                Some(Piece::Text(t)) => t.push(c),
                _ => pieces.push(Piece::Text(c.to_string())),
            }
        };
        let push_template = |word: &mut Option<Vec<Piece>>, reference: &Reference, source: &str| {
            word.get_or_insert_with(Vec::new)
                .push(Piece::Template { reference: reference.clone(), source: source.to_string() });
        };
        let mut i = 0;
        while i < toks.len() {
            let c = match &toks[i] {
                Tok::Template(reference, source) => {
                    push_template(&mut word, reference, source);
                    i += 1;
                    continue;
                }
                Tok::Char(c) => *c,
            };
            i += 1;
            match c {
                ' ' | '\t' => words.extend(word.take().map(Word)),
                '\n' | '\r' => {
                    if word.is_some() || !words.is_empty() {
                        return Ok(shell("several lines (a script)"));
                    }
                }
                '\\' => match toks.get(i) {
                    None => return Err("the command ends with a backslash".to_string()),
                    Some(Tok::Char('\n')) => i += 1,
                    Some(Tok::Char(c)) => {
                        push(&mut word, *c);
                        i += 1;
                    }
                    Some(Tok::Template(reference, source)) => {
                        push_template(&mut word, reference, source);
                        i += 1;
                    }
                },
                '\'' => {
                    word.get_or_insert_with(Vec::new);
                    loop {
                        match toks.get(i) {
                            None => return Err("a single quote is never closed".to_string()),
                            Some(Tok::Char('\'')) => break,
                            Some(Tok::Char(c)) => push(&mut word, *c),
                            Some(Tok::Template(reference, source)) => {
                                push_template(&mut word, reference, source)
                            }
                        }
                        i += 1;
                    }
                    i += 1;
                }
                '"' => {
                    word.get_or_insert_with(Vec::new);
                    loop {
                        match toks.get(i) {
                            None => return Err("a double quote is never closed".to_string()),
                            Some(Tok::Char('"')) => break,
                            Some(Tok::Char('\\')) => match toks.get(i + 1) {
                                Some(Tok::Char(c @ ('$' | '`' | '"' | '\\'))) => {
                                    push(&mut word, *c);
                                    i += 1;
                                }
                                Some(Tok::Char('\n')) => i += 1,
                                _ => push(&mut word, '\\'),
                            },
                            Some(Tok::Char(c @ ('$' | '`'))) => {
                                return Ok(shell(construct(*c).expect("a construct")));
                            }
                            Some(Tok::Char(c)) => push(&mut word, *c),
                            Some(Tok::Template(reference, source)) => {
                                push_template(&mut word, reference, source)
                            }
                        }
                        i += 1;
                    }
                    i += 1;
                }
                '#' if word.is_none() => return Ok(shell("`#` (a comment)")),
                '~' if word.is_none() => return Ok(shell("`~` (the home directory)")),
                '{' if brace_expansion(&toks[i..]) => return Ok(shell("`{a,b}` (brace expansion)")),
                c => match construct(c) {
                    Some(what) => return Ok(shell(what)),
                    None => push(&mut word, c),
                },
            }
        }
        words.extend(word.take().map(Word));
        let Some(first) = words.first() else { return Err("the command is empty".to_string()) };
        let Some(program) = first.literal() else {
            return Err(format!(
                "the program is a template (`{}`): an untrusted workflow must name the programs it runs, so \
                 that they can be granted",
                first.shown()
            ));
        };
        if SHELL_WORDS.contains(&program.as_str()) {
            return Ok(shell(&format!("`{program}` (a shell keyword or builtin)")));
        }
        if is_assignment(command.trim_start()) {
            return Ok(shell("`NAME=value` (a variable assignment)"));
        }
        if let Some(script) = shell_script(&program, &words[1..])
            && script.has_template()
        {
            return Err(format!(
                "`{}` is the command string of `{program} -c`, which runs it as code: a value there would \
                 become code; pass it as an argument after the command string instead, as in \
                 `{program} -c 'echo \"$1\"' {program} {{{{ vars.v }}}}`",
                script.shown()
            ));
        }
        Ok(CommandLine::Argv(words))
    }

    /// The argv that asks for: the words, or `sh -c COMMAND` (as written, templates unrendered).
    pub fn asked_argv(&self) -> Vec<String> {
        match self {
            CommandLine::Argv(words) => words.iter().map(Word::shown).collect(),
            CommandLine::Shell { command, .. } => vec!["sh".into(), "-c".into(), command.clone()],
        }
    }

    /// The argv, rendered: each template is (part of) exactly one argument; for a shell command,
    /// `sh -c` and the command with every value quoted for the shell.
    pub fn render(&self, values: &Values) -> Result<Vec<String>, RenderError> {
        match self {
            CommandLine::Argv(words) => words.iter().map(|w| w.render(values)).collect(),
            CommandLine::Shell { command, .. } => {
                Ok(vec!["sh".into(), "-c".into(), render::render_shell(command, values)?])
            }
        }
    }

    /// The arguments after the program, as a pre-run check sees them.
    fn args(&self) -> Vec<Arg<'_>> {
        match self {
            CommandLine::Argv(words) => words[1..]
                .iter()
                .map(|w| match w.0.as_slice() {
                    [Piece::Text(t)] => Arg::Literal(t),
                    [] => Arg::Literal(""),
                    _ => Arg::Template,
                })
                .collect(),
            CommandLine::Shell { command, .. } => {
                let script = if command.contains("{{") { Arg::Template } else { Arg::Literal(command) };
                vec![Arg::Literal("-c"), script]
            }
        }
    }

    fn program(&self) -> String {
        match self {
            CommandLine::Argv(words) => words[0].literal().unwrap_or_default(),
            CommandLine::Shell { .. } => "sh".to_string(),
        }
    }
}

/// `{a,b}` or `{1..3}`: an unquoted `{` (just read) with a `,` or `..` before its `}` in the word.
fn brace_expansion(rest: &[Tok]) -> bool {
    let mut text = String::new();
    for tok in rest {
        match tok {
            Tok::Char('}') => return text.contains(',') || text.contains(".."),
            Tok::Char(c) if c.is_whitespace() || "'\"\\{".contains(*c) => return false,
            Tok::Char(c) => text.push(*c),
            Tok::Template(..) => text.push('x'),
        }
    }
    false
}

fn is_assignment(command: &str) -> bool {
    let name_end = command.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(command.len());
    name_end > 0 && !command.starts_with(|c: char| c.is_ascii_digit()) && command[name_end..].starts_with('=')
}

/// The script word of `SHELL [options] -c SCRIPT`, when `program` is a shell run with `-c`.
fn shell_script<'w>(program: &str, args: &'w [Word]) -> Option<&'w Word> {
    let name = Path::new(program).file_name()?.to_str()?;
    if !SHELLS.contains(&name) {
        return None;
    }
    let mut seen_c = false;
    let mut after_o = false;
    for word in args {
        let text = word.literal().unwrap_or_default();
        if after_o {
            after_o = false;
            continue;
        }
        if (text.starts_with('-') || text.starts_with('+')) && text != "--" && text.len() > 1 {
            seen_c |= text.starts_with('-') && !text.starts_with("--") && text.contains('c');
            after_o = text == "-o" || text == "+o" || text == "-O" || text == "+O";
            continue;
        }
        if word.literal().as_deref() == Some("sh") && name == "busybox" {
            continue;
        }
        return seen_c.then_some(word);
    }
    None
}

/// Where a `run:` program is: a path with `/` relative to `cwd`, else found on `path`.
pub fn resolve_exec(program: &str, cwd: &Path, path: Option<&OsStr>) -> Result<PathBuf, String> {
    if program.contains('/') {
        let candidate = cwd.join(program);
        return if candidate.is_file() {
            Ok(candidate)
        } else {
            Err(format!("{} does not exist", candidate.display()))
        };
    }
    which::which_in(program, Some(path.unwrap_or_default()), cwd)
        .map_err(|_| format!("`{program}` is not on PATH"))
}

// ---------------------------------------------------------------------------------------------
// What a workflow asks for.

/// Everything a workflow will ask the host for, worked out before it runs.
#[derive(Debug, Clone, Default)]
pub struct Asks {
    pub asks: Vec<Ask>,
}

/// One thing a workflow asks for.
#[derive(Debug, Clone)]
pub struct Ask {
    /// Who asks: ``step `fetch` ``, ``agent `fixer` ``, ``step `check`, gate `gates/g.wasm` ``.
    pub by: String,
    pub kind: AskKind,
}

#[derive(Debug, Clone)]
pub enum AskKind {
    /// A `run:` command; `problem` says why it can never run untrusted (no grant would help).
    Exec { command: Result<CommandLine, String>, written: String, resolved: Option<PathBuf> },
    /// An agent: a CLI by name, a command agent by its argv as written.
    Agent { argv: Vec<String>, cli: bool, resolved: Option<PathBuf> },
    /// An agent passes this variable through from the runner's environment.
    Env { name: String },
    /// An agent CLI, which needs the network.
    Network,
    /// The workflow grants a gate component this exec pattern.
    GateExec { pattern: String },
    /// The workflow grants a gate component write access to this path.
    GateWrite { path: PathBuf },
    /// The workflow grants a gate component read access to this path outside the workspace.
    GateRead { path: PathBuf },
}

/// An ask the policy does not grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// One sentence: who asks for what, and what would grant it.
    pub message: String,
    /// The flag that grants it (`--grant-exec 'curl **'`); `None` when no grant can.
    pub flag: Option<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Asks {
    /// What `workflow` asks for. Agent programs are relative to `definition_dir`; `run:`
    /// programs are found on the runner's PATH (from the workspace); gate grants are relative to
    /// `workspace`.
    pub fn of(
        workflow: &Workflow,
        definition_dir: &Path,
        workspace: &Path,
        runner_env: &[(OsString, OsString)],
    ) -> Asks {
        Asks::of_steps(workflow, &workflow.steps, definition_dir, workspace, runner_env)
    }

    /// What `steps` of `workflow` ask for (the steps a workflow component adds as it runs).
    pub fn of_steps(
        workflow: &Workflow,
        steps: &[crate::spec::Step],
        definition_dir: &Path,
        workspace: &Path,
        runner_env: &[(OsString, OsString)],
    ) -> Asks {
        let path = env::lookup(runner_env, "PATH");
        let mut asks = Vec::new();
        let mut agents: Vec<&str> = Vec::new();
        for step in steps {
            if let Action::Run { command } = &step.action {
                let line = CommandLine::parse(command);
                let written = line.as_ref().map(CommandLine::program).unwrap_or_default();
                let resolved = line.as_ref().ok().and_then(|_| resolve_exec(&written, workspace, path).ok());
                asks.push(Ask {
                    by: format!("step `{}`", step.name),
                    kind: AskKind::Exec { command: line, written, resolved },
                });
            }
            if let Action::Agent { agent, .. } = &step.action
                && !agents.contains(&agent.as_str())
            {
                agents.push(agent);
            }
            if let Some(repair) = workflow.repair_of(step)
                && !agents.contains(&repair.agent.as_str())
            {
                agents.push(&repair.agent);
            }
            for gate in super::checks::gates_of(step) {
                if gate.builtin_name().is_some() {
                    continue;
                }
                let by = format!("step `{}`, gate `{}`", step.name, gate.gate);
                let absolute = |p: &PathBuf| normalize(&workspace.join(p));
                for pattern in &gate.grants.exec {
                    asks.push(Ask { by: by.clone(), kind: AskKind::GateExec { pattern: pattern.clone() } });
                }
                for path in gate.grants.write.iter().map(absolute) {
                    asks.push(Ask { by: by.clone(), kind: AskKind::GateWrite { path } });
                }
                for path in gate.grants.read.iter().map(absolute) {
                    let resolved = path.canonicalize().unwrap_or_else(|_| path.clone());
                    if !resolved.starts_with(workspace) {
                        asks.push(Ask { by: by.clone(), kind: AskKind::GateRead { path: resolved } });
                    }
                }
            }
        }
        for name in agents {
            let Some(agent) = workflow.agents.get(name) else { continue };
            let by = format!("agent `{name}`");
            let (argv, cli) = match &agent.kind {
                AgentKind::Cli { cli, .. } => (vec![cli.as_str().to_string()], true),
                AgentKind::Command { argv } => (argv.clone(), false),
            };
            let resolved = super::step::resolve_program(&argv[0], definition_dir, runner_env).ok();
            asks.push(Ask { by: by.clone(), kind: AskKind::Agent { argv, cli, resolved } });
            for variable in &agent.env {
                asks.push(Ask { by: by.clone(), kind: AskKind::Env { name: variable.clone() } });
            }
            if cli {
                asks.push(Ask { by, kind: AskKind::Network });
            }
        }
        Asks { asks }
    }

    /// Whether the workflow starts native processes (commands or agents).
    pub fn has_native(&self) -> bool {
        self.asks.iter().any(|a| matches!(a.kind, AskKind::Exec { .. } | AskKind::Agent { .. }))
    }

    /// Every ask with the policy's answer: `None` when granted.
    pub fn decide<'a>(&'a self, policy: &Policy) -> Vec<(&'a Ask, Option<Refusal>)> {
        self.asks.iter().map(|ask| (ask, ask.refusal(policy))).collect()
    }

    /// Every ask the policy does not grant.
    pub fn refusals(&self, policy: &Policy) -> Vec<Refusal> {
        self.asks.iter().filter_map(|ask| ask.refusal(policy)).collect()
    }

    /// The folders of the programs granted asks run (what a confined process must read to start
    /// them).
    pub fn program_dirs(&self, policy: &Policy) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for ask in &self.asks {
            let resolved = match &ask.kind {
                AskKind::Exec { resolved, .. } | AskKind::Agent { resolved, .. } => resolved,
                _ => continue,
            };
            if ask.refusal(policy).is_some() {
                continue;
            }
            for path in resolved.iter().flat_map(|p| [Some(p.clone()), p.canonicalize().ok()]).flatten() {
                if let Some(dir) = path.parent().map(Path::to_path_buf)
                    && !dirs.contains(&dir)
                {
                    dirs.push(dir);
                }
            }
        }
        dirs
    }
}

impl Ask {
    /// What is asked for, in a few words: `exec curl -sS https://x`, `agent claude`, `env KEY`.
    pub fn what(&self) -> String {
        match &self.kind {
            AskKind::Exec { command: Ok(line), .. } => format!("exec {}", shown_argv(&line.asked_argv())),
            AskKind::Exec { command: Err(_), .. } => "exec (cannot run untrusted)".to_string(),
            AskKind::Agent { argv, .. } => format!("agent {}", shown_argv(argv)),
            AskKind::Env { name } => format!("env {name}"),
            AskKind::Network => "network".to_string(),
            AskKind::GateExec { pattern } => format!("gate exec {}", quoted(pattern)),
            AskKind::GateWrite { path } => format!("gate write {}", path.display()),
            AskKind::GateRead { path } => format!("gate read {}", path.display()),
        }
    }

    /// The short kind: `exec`, `agent`, `env`, `net`, `gate-exec`, `gate-write`, `gate-read`.
    pub fn kind(&self) -> &'static str {
        match &self.kind {
            AskKind::Exec { .. } => "exec",
            AskKind::Agent { .. } => "agent",
            AskKind::Env { .. } => "env",
            AskKind::Network => "net",
            AskKind::GateExec { .. } => "gate-exec",
            AskKind::GateWrite { .. } => "gate-write",
            AskKind::GateRead { .. } => "gate-read",
        }
    }

    /// `None` when the policy grants this ask; otherwise what is missing and how to grant it.
    pub fn refusal(&self, policy: &Policy) -> Option<Refusal> {
        let grant = |flag: String, toml: String, message: String| Refusal {
            message: format!(
                "{message}, which is not granted: grant it with {flag} (or in {POLICY_FILE}: {toml})"
            ),
            flag: Some(flag),
        };
        let by = &self.by;
        match &self.kind {
            AskKind::Exec { command: Err(problem), .. } => Some(Refusal {
                message: format!("{by} cannot run in an untrusted workflow: {problem}"),
                flag: None,
            }),
            AskKind::Exec { command: Ok(line), written, resolved } => {
                let granted = policy.exec.iter().any(|p| {
                    program_matches(p.program(), written, resolved.as_deref())
                        && pattern_allows(p, &line.args())
                });
                if granted {
                    return None;
                }
                let argv = line.asked_argv();
                let (pattern, message) = match line {
                    CommandLine::Shell { construct, .. } => (
                        "sh -c *".to_string(),
                        format!(
                            "{by} uses shell syntax ({construct}), and untrusted commands run without a shell: \
                             it would run as `sh -c {}`",
                            quoted(&argv[2])
                        ),
                    ),
                    CommandLine::Argv(_) => {
                        (format!("{written} **"), format!("{by} runs `{}`", shown_argv(&argv)))
                    }
                };
                Some(grant(
                    format!("--grant-exec {}", quoted(&pattern)),
                    format!("exec = [{pattern:?}]"),
                    message,
                ))
            }
            AskKind::Agent { argv, cli, resolved } => {
                let granted = if *cli {
                    policy.agents.iter().any(|p| {
                        program_matches(p.program(), &argv[0], resolved.as_deref())
                            && matches!(pattern_tokens(p).as_slice(), [] | [Token::Rest])
                    })
                } else {
                    policy.agent_grant(argv, resolved.as_deref()).is_some()
                };
                if granted {
                    return None;
                }
                let message = if *cli {
                    format!("{by} is the `{}` CLI", argv[0])
                } else {
                    format!("{by} runs `{}`", shown_argv(argv))
                };
                Some(grant(
                    format!("--grant-agent {}", quoted(&argv[0])),
                    format!("agents = [{:?}]", argv[0]),
                    message,
                ))
            }
            AskKind::Env { name } => (!policy.env.contains(name)).then(|| {
                grant(
                    format!("--grant-env {name}"),
                    format!("env = [{name:?}]"),
                    format!("{by} passes {name} through from your environment"),
                )
            }),
            AskKind::Network => (!policy.net).then(|| {
                grant("--grant-net".to_string(), "net = true".to_string(), format!("{by} needs the network"))
            }),
            AskKind::GateExec { pattern } => {
                let parsed = ExecPattern::parse(pattern).ok()?;
                let covered = policy.exec.iter().any(|p| p.covers(&parsed));
                (!covered).then(|| {
                    grant(
                        format!("--grant-exec {}", quoted(pattern)),
                        format!("exec = [{pattern:?}]"),
                        format!("{by} is granted exec {} by the workflow", quoted(pattern)),
                    )
                })
            }
            AskKind::GateWrite { path } => {
                let covered = policy.write.iter().any(|g| path.starts_with(g));
                (!covered).then(|| {
                    let shown = path.display().to_string();
                    grant(
                        format!("--grant-write {}", quoted(&shown)),
                        format!("write = [{shown:?}]"),
                        format!("{by} is granted write access to {shown} by the workflow"),
                    )
                })
            }
            AskKind::GateRead { path } => {
                let covered = policy.read.iter().chain(&policy.write).any(|g| path.starts_with(g));
                (!covered).then(|| {
                    let shown = path.display().to_string();
                    grant(
                        format!("--grant-read {}", quoted(&shown)),
                        format!("read = [{shown:?}]"),
                        format!("{by} is granted read access to {shown} by the workflow"),
                    )
                })
            }
        }
    }
}

/// Checked as a process starts: why running `argv` (its program resolved to `resolved`) is not
/// granted, if it is not.
pub fn exec_refusal(policy: &Policy, step: &str, argv: &[String], resolved: &Path) -> Option<String> {
    if policy.exec_grant(argv, Some(resolved)).is_some() {
        return None;
    }
    let pattern = if argv.len() == 3 && argv[0] == "sh" && argv[1] == "-c" {
        "sh -c *".to_string()
    } else {
        format!("{} **", argv[0])
    };
    Some(format!(
        "step `{step}` would run `{}`, which is not granted (the workflow is untrusted): grant it with \
         --grant-exec {}",
        shown_argv(argv),
        quoted(&pattern)
    ))
}

/// Checked as an agent starts: why starting agent `name` (its program resolved to `resolved`)
/// or passing it the variables it lists is not granted, if it is not.
pub fn agent_refusal(
    policy: &Policy,
    name: &str,
    agent: &crate::spec::Agent,
    resolved: &Path,
) -> Option<String> {
    let by = format!("agent `{name}`");
    let (argv, cli) = match &agent.kind {
        AgentKind::Cli { cli, .. } => (vec![cli.as_str().to_string()], true),
        AgentKind::Command { argv } => (argv.clone(), false),
    };
    let mut asks =
        vec![Ask { by: by.clone(), kind: AskKind::Agent { argv, cli, resolved: Some(resolved.into()) } }];
    asks.extend(agent.env.iter().map(|n| Ask { by: by.clone(), kind: AskKind::Env { name: n.clone() } }));
    let refusals: Vec<String> = asks.iter().filter_map(|a| a.refusal(policy)).map(|r| r.message).collect();
    (!refusals.is_empty()).then(|| refusals.join("; "))
}

/// An argv for people: words joined with spaces, quoted where a shell would need it.
pub fn shown_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|w| {
            let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%{}".contains(c);
            if !w.is_empty() && w.chars().all(plain) { w.clone() } else { quoted(w) }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// The check before a run.

/// The check an untrusted run makes before anything runs: every ask granted, and its native
/// steps confined (the confinement is prepared here, once for the run) or allowed to run
/// unconfined. Errors list every refusal, each naming the flag that grants it. A trusted run
/// passes.
pub fn check(
    trust: &Trust,
    workflow: &Workflow,
    workspace: &Path,
    definition_dir: &Path,
    runner_env: &[(OsString, OsString)],
) -> anyhow::Result<()> {
    let Some(policy) = trust.policy() else { return Ok(()) };
    let asks = Asks::of(workflow, definition_dir, workspace, runner_env);
    let refusals = asks.refusals(policy);
    if !refusals.is_empty() {
        let mut message = format!(
            "this workflow is untrusted, and it asks for {} that {} not granted; nothing ran:",
            if refusals.len() == 1 { "something" } else { "things" },
            if refusals.len() == 1 { "was" } else { "were" },
        );
        for refusal in &refusals {
            let _ = write!(message, "\n  - {refusal}");
        }
        message.push_str(
            "\n`greenlight plan FILE` (with the same --grant flags) lists everything the workflow asks for",
        );
        bail!("{message}");
    }
    decide_confinement(policy, &asks, workspace, runner_env)
}

/// The check of the steps a workflow component adds while an untrusted run goes on: everything
/// they ask for must be granted, as for the steps it started with.
pub fn check_added(
    trust: &Trust,
    workflow: &Workflow,
    added: &[crate::spec::Step],
    workspace: &Path,
    definition_dir: &Path,
    runner_env: &[(OsString, OsString)],
) -> Result<(), String> {
    let Some(policy) = trust.policy() else { return Ok(()) };
    let refusals = Asks::of_steps(workflow, added, definition_dir, workspace, runner_env).refusals(policy);
    if refusals.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = refusals.into_iter().map(|r| r.message).collect();
    Err(format!(
        "the untrusted workflow added a step that asks for what was not granted: {}",
        list.join("; ")
    ))
}

/// What an untrusted run's native processes may touch: write the workspace and the granted write
/// paths, except the workspace's `.git` and greenlight's `.greenlight` (the run store), which
/// they may only read — greenlight's own git commands and its records must not run or read what a
/// step planted there; `.greenlight/runs` (where the run's temp dir is) stays writable. Read
/// everything but the home directories (the runner's `HOME`, `/root`, `/home`), of which they
/// still read the granted read paths and the folders of the granted programs; the network only
/// when granted.
pub fn confinement(
    policy: &Policy,
    asks: &Asks,
    workspace: &Path,
    runner_env: &[(OsString, OsString)],
) -> Confinement {
    // `.git` whatever it is (a folder, or a worktree's file): the hooks and configuration
    // greenlight's git commands would run. `.greenlight` exists (the run store is open) and must
    // be protected: preparing fails rather than run without it.
    let mut read_only = Vec::new();
    let git = workspace.join(".git");
    if git.exists() {
        read_only.push(git);
    }
    read_only.push(workspace.join(".greenlight"));
    // The workspace covers granted paths inside it, except inside a read-only path: a grant
    // there is the person's explicit choice.
    let mut writable = vec![workspace.to_path_buf()];
    writable.extend(
        policy
            .write
            .iter()
            .filter(|p| !p.starts_with(workspace) || read_only.iter().any(|r| p.starts_with(r)))
            .cloned(),
    );
    writable.extend(policy.private_tmp().map(Path::to_path_buf));
    let mut readable: Vec<PathBuf> = policy.read.clone();
    for dir in asks.program_dirs(policy) {
        if !readable.contains(&dir) && !dir.starts_with(workspace) {
            readable.push(dir);
        }
    }
    let mut hidden: Vec<PathBuf> = env::lookup(runner_env, "HOME")
        .map(PathBuf::from)
        .filter(|home| home.is_absolute() && home != Path::new("/"))
        .into_iter()
        .collect();
    for dir in ["/root", "/home"] {
        if !hidden.iter().any(|h| h == Path::new(dir)) {
            hidden.push(dir.into());
        }
    }
    Confinement { writable, readable, hidden, network: policy.net, read_only }
}

/// Decide (once per run) how the run's native processes are confined, preparing the confinement.
/// Errors when the kernel cannot confine them, the workflow has native steps, and the person did
/// not allow running unconfined.
fn decide_confinement(
    policy: &Policy,
    asks: &Asks,
    workspace: &Path,
    runner_env: &[(OsString, OsString)],
) -> anyhow::Result<()> {
    if policy.confined().is_some() {
        return Ok(());
    }
    if policy.private_tmp().is_none() {
        let tmp = PrivateTmp::create()
            .context("creating the private temp dir for the untrusted workflow's steps")?;
        let _ = policy.confined.0.1.set(tmp);
    }
    let support = confine::support();
    let can_confine = can_confine(&support, policy);
    let confined = if can_confine {
        let confinement = confinement(policy, asks, workspace, runner_env);
        let prepared =
            confinement.prepare().context("preparing the confinement of the untrusted workflow's steps")?;
        Confined::Yes(Arc::new(prepared))
    } else if policy.allow_unconfined {
        Confined::Unconfined(support.to_string())
    } else if asks.has_native() {
        let net = if support.landlock_abi.is_some() && support.mountns {
            " (or grant the network with --grant-net, which needs no network namespace)"
        } else {
            ""
        };
        bail!(
            "this workflow is untrusted and runs native steps, which cannot be confined on this machine: \
             {support}; nothing ran. Run it where the kernel offers that{net}, or accept that its steps \
             run unconfined, able to read and write whatever you can, with --allow-unconfined"
        );
    } else {
        Confined::Unavailable(support.to_string())
    };
    let _ = policy.confined.0.0.set(confined);
    Ok(())
}

/// Whether this kernel can confine the steps of a run under `policy`: Landlock and a mount
/// namespace always, a network namespace unless the network is granted.
pub fn can_confine(support: &confine::Support, policy: &Policy) -> bool {
    support.landlock_abi.is_some() && support.mountns && (policy.net || support.netns)
}

/// A native process as it starts: its program and arguments, and what confines it.
#[derive(Debug)]
pub struct Process {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub confinement: Option<Arc<PreparedConfinement>>,
    /// The first line of its log, when it runs unconfined.
    pub notice: Option<String>,
}

/// What a native process of a run starts as: for an untrusted run, confined; or, when the person
/// allowed it, unconfined, behind a first line in its log that says so.
pub fn confine_process(trust: &Trust, program: PathBuf, args: Vec<String>) -> Result<Process, String> {
    let Some(policy) = trust.policy() else {
        return Ok(Process { program, args, confinement: None, notice: None });
    };
    match policy.confined() {
        Some(Confined::Yes(prepared)) => {
            Ok(Process { program, args, confinement: Some(prepared.clone()), notice: None })
        }
        Some(Confined::Unconfined(why)) => {
            let notice = format!(
                "greenlight: this step of an untrusted workflow runs UNCONFINED (--allow-unconfined): {why}"
            );
            Ok(Process { program, args, confinement: None, notice: Some(notice) })
        }
        Some(Confined::Unavailable(why)) => Err(format!(
            "an untrusted workflow's step cannot be confined on this machine ({why}); run with \
             --allow-unconfined to run it anyway"
        )),
        None => Err("the untrusted run's confinement was not prepared (a greenlight bug)".to_string()),
    }
}

/// The workspace's policy file as it was before a native process of an untrusted run started:
/// the workspace is writable, but no step may widen the grants of the runs to come.
pub struct PolicyFileGuard {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl PolicyFileGuard {
    /// For an untrusted run whose policy file lies inside `workspace`.
    pub fn before(trust: &Trust, workspace: &Path) -> Option<PolicyFileGuard> {
        let path = trust.policy()?.file.clone()?;
        if !path.starts_with(workspace) {
            return None;
        }
        let bytes = std::fs::read(&path).ok()?;
        Some(PolicyFileGuard { path, bytes })
    }

    /// Put the file back if the process changed it; then why that fails the step.
    pub fn after(self) -> Option<String> {
        let regular = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.file_type().is_file());
        if regular && std::fs::read(&self.path).is_ok_and(|now| now == self.bytes) {
            return None;
        }
        let shown = self.path.display();
        let restored = match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&self.path),
            Ok(_) => std::fs::remove_file(&self.path),
            Err(_) => Ok(()),
        }
        .and_then(|()| std::fs::write(&self.path, &self.bytes));
        Some(match restored {
            Ok(()) => format!(
                "changed the policy file {shown} (put back as it was): no step of an untrusted workflow \
                 may change its grants"
            ),
            Err(e) => format!("changed the policy file {shown}, and it could not be put back: {e}"),
        })
    }
}

/// The environment an untrusted run's native process starts from: the documented base set with
/// `HOME` and `TMPDIR` in the run's private temp dir.
pub fn untrusted_env(runner_env: &[(OsString, OsString)], policy: &Policy) -> Result<env::Env, String> {
    let tmp = policy.private_tmp().ok_or("the run's private temp dir was not prepared (a greenlight bug)")?;
    let mut base = env::Env::base(runner_env);
    base.set("HOME", tmp);
    base.set("TMPDIR", tmp);
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> ExecPattern {
        ExecPattern::parse(s).unwrap()
    }

    fn argv(line: &CommandLine) -> Vec<String> {
        line.asked_argv()
    }

    fn words(command: &str) -> Vec<String> {
        match CommandLine::parse(command).unwrap() {
            CommandLine::Argv(words) => words.iter().map(Word::shown).collect(),
            other => panic!("{command:?} read as {other:?}"),
        }
    }

    fn construct_of(command: &str) -> String {
        match CommandLine::parse(command).unwrap() {
            CommandLine::Shell { construct, .. } => construct,
            other => panic!("{command:?} read as {other:?}"),
        }
    }

    #[test]
    fn commands_split_into_words_like_sh() {
        assert_eq!(words("cargo test --all"), ["cargo", "test", "--all"]);
        assert_eq!(words("echo 'a b' \"c d\" e\\ f"), ["echo", "a b", "c d", "e f"]);
        assert_eq!(words("echo \"say \\\"hi\\\"\" '' x"), ["echo", "say \"hi\"", "", "x"]);
        assert_eq!(words("node --test\n"), ["node", "--test"]);
        assert_eq!(
            words("find . -name x -exec rm {} \\;"),
            ["find", ".", "-name", "x", "-exec", "rm", "{}", ";"]
        );
        assert_eq!(words("a \\\n b"), ["a", "b"]);
    }

    #[test]
    fn each_template_is_part_of_one_word() {
        let line =
            CommandLine::parse("echo x{{ vars.v }}y '{{ steps.a.output }}' \"n: {{ vars.v }}\"").unwrap();
        assert_eq!(argv(&line), ["echo", "x{{ vars.v }}y", "{{ steps.a.output }}", "n: {{ vars.v }}"]);
        let mut values = Values::new();
        values.set_var("v", "; rm -rf ~ $(touch PWNED)");
        values.set_step("a", "a b\tc\n", Some(0));
        let rendered = line.render(&values).unwrap();
        assert_eq!(
            rendered,
            ["echo", "x; rm -rf ~ $(touch PWNED)y", "a b\tc", "n: ; rm -rf ~ $(touch PWNED)"]
        );
    }

    #[test]
    fn shell_syntax_asks_for_a_shell() {
        for (command, needle) in [
            ("make && make test", "`&`"),
            ("echo hi; curl x", "`;`"),
            ("cat a | grep b", "pipe"),
            ("echo x > /tmp/f", "redirection"),
            ("echo $HOME", "`$`"),
            ("echo \"$(id)\"", "`$`"),
            ("echo `id`", "backquotes"),
            ("ls *.rs", "glob"),
            ("cat ~/.ssh/id_rsa", "home directory"),
            ("echo a\necho b", "several lines"),
            ("FOO=1 make", "assignment"),
            ("cd sub", "builtin"),
            ("if true then echo fi", "keyword"),
            ("echo {a,b}", "brace"),
            ("make # comment", "comment"),
            ("(cd x)", "subshell"),
        ] {
            let construct = construct_of(command);
            assert!(construct.contains(needle), "{command:?}: {construct}");
        }
        let line = CommandLine::parse("echo {{ vars.v }} > out").unwrap();
        assert_eq!(argv(&line), ["sh", "-c", "echo {{ vars.v }} > out"]);
        let mut values = Values::new();
        values.set_var("v", "$(touch PWNED)");
        assert_eq!(line.render(&values).unwrap()[2], "echo '$(touch PWNED)' > out");
    }

    #[test]
    fn what_no_grant_can_make_run_is_an_error() {
        let err = CommandLine::parse("{{ steps.a.output }} --force").unwrap_err();
        assert!(err.contains("the program is a template"), "{err}");
        let err = CommandLine::parse("sh -c {{ steps.a.output }}").unwrap_err();
        assert!(err.contains("command string of `sh -c`"), "{err}");
        let err = CommandLine::parse("bash -o pipefail -ec 'x {{ vars.v }}'").unwrap_err();
        assert!(err.contains("`bash -c`"), "{err}");
        assert!(CommandLine::parse("sh -c 'echo \"$1\"' sh {{ vars.v }}").is_ok());
        assert!(CommandLine::parse("echo 'open").unwrap_err().contains("never closed"));
        assert!(CommandLine::parse("   ").unwrap_err().contains("empty"));
    }

    fn policy(exec: &[&str]) -> Policy {
        Policy { exec: exec.iter().map(|p| pat(p)).collect(), ..Policy::default() }
    }

    fn exec_ask(command: &str) -> Ask {
        let line = CommandLine::parse(command);
        let written = line.as_ref().map(CommandLine::program).unwrap_or_default();
        Ask { by: "step `s`".into(), kind: AskKind::Exec { command: line, written, resolved: None } }
    }

    #[test]
    fn a_templated_argument_is_granted_only_by_a_wildcard() {
        let ask = exec_ask("rm -rf {{ vars.home }}");
        assert!(ask.refusal(&policy(&["rm **"])).is_none());
        assert!(ask.refusal(&policy(&["rm -rf *"])).is_none());
        assert!(ask.refusal(&policy(&["rm -rf /tmp/x"])).is_some());
        let refusal = ask.refusal(&policy(&["curl **"])).unwrap();
        assert_eq!(refusal.flag.as_deref(), Some("--grant-exec 'rm **'"));
        assert!(
            refusal.message.starts_with("step `s` runs `rm -rf '{{ vars.home }}'`"),
            "{}",
            refusal.message
        );
        assert!(refusal.message.contains("exec = [\"rm **\"]"), "{}", refusal.message);
    }

    #[test]
    fn a_shell_command_is_granted_only_by_sh_c() {
        let ask = exec_ask("echo pwned > /tmp/outside");
        let refusal = ask.refusal(&policy(&["echo **"])).unwrap();
        assert_eq!(refusal.flag.as_deref(), Some("--grant-exec 'sh -c *'"));
        assert!(refusal.message.contains("without a shell"), "{}", refusal.message);
        assert!(ask.refusal(&policy(&["sh -c *"])).is_none());
    }

    #[test]
    fn at_spawn_the_rendered_argv_is_checked() {
        let p = policy(&["echo **", "/usr/bin/git status **"]);
        let argv = |s: &[&str]| s.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert!(p.exec_grant(&argv(&["echo", "; curl evil"]), None).is_some());
        assert!(p.exec_grant(&argv(&["curl", "evil"]), None).is_none());
        assert!(p.exec_grant(&argv(&["git", "status"]), Some(Path::new("/usr/bin/git"))).is_some());
        assert!(p.exec_grant(&argv(&["git", "push"]), Some(Path::new("/usr/bin/git"))).is_none());
        assert!(p.exec_grant(&argv(&["./git", "status"]), Some(Path::new("/ws/git"))).is_none());
    }

    #[test]
    fn an_agent_pattern_that_is_a_program_grants_any_arguments() {
        let p = Policy { agents: vec![pat("./agents/fix.sh"), pat("claude")], ..Policy::default() };
        let ask = |argv: &[&str], cli| Ask {
            by: "agent `a`".into(),
            kind: AskKind::Agent { argv: argv.iter().map(|s| s.to_string()).collect(), cli, resolved: None },
        };
        assert!(ask(&["./agents/fix.sh", "--mode", "fix"], false).refusal(&p).is_none());
        assert!(ask(&["claude"], true).refusal(&p).is_none());
        let refusal = ask(&["codex"], true).refusal(&p).unwrap();
        assert_eq!(refusal.flag.as_deref(), Some("--grant-agent 'codex'"));
        let narrow = Policy { agents: vec![pat("./a.sh --safe")], ..Policy::default() };
        assert!(ask(&["./a.sh", "--safe"], false).refusal(&narrow).is_none());
        assert!(ask(&["./a.sh", "--unsafe"], false).refusal(&narrow).is_some());
    }

    #[test]
    fn the_policy_file_reads_like_the_flags() {
        let base = Path::new("/ws");
        let text = "exec = [\"cargo test **\"]\nagents = [\"claude\"]\nwrite = [\"out\", \"~/cache\"]\n\
                    read = [\"/data\"]\nenv = [\"API_KEY\"]\nnet = true\n";
        let p = Policy::parse(text, "greenlight.policy.toml", base, Some(Path::new("/home/me"))).unwrap();
        assert_eq!(p.exec, [pat("cargo test **")]);
        assert_eq!(p.agents, [pat("claude")]);
        assert_eq!(p.write, [PathBuf::from("/ws/out"), PathBuf::from("/home/me/cache")]);
        assert_eq!(p.read, [PathBuf::from("/data")]);
        assert_eq!(p.env, ["API_KEY"]);
        assert!(p.net);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), p);
    }

    #[test]
    fn policy_file_errors_name_the_line_and_column() {
        let base = Path::new("/ws");
        let err =
            Policy::parse("exec = [\"x\"]\nnetwork = true\n", "p.toml", base, None).unwrap_err().to_string();
        assert!(err.starts_with("p.toml:2:1: "), "{err}");
        assert!(err.contains("network"), "{err}");
        let err = Policy::parse("exec = [\n  \"* x\"]\n", "p.toml", base, None).unwrap_err().to_string();
        assert!(err.starts_with("p.toml:2:3: `exec`: "), "{err}");
        let err = Policy::parse("env = [\"A-B\"]\n", "p.toml", base, None).unwrap_err().to_string();
        assert!(err.contains("`env`") && err.contains("not an environment variable name"), "{err}");
        let err = Policy::parse("net = \"yes\"\n", "p.toml", base, None).unwrap_err().to_string();
        assert!(err.starts_with("p.toml:1:7: "), "{err}");
    }

    #[test]
    fn flags_add_to_the_file() {
        let mut file = policy(&["make **"]);
        file.env = vec!["A".into()];
        let mut flags = policy(&["make **", "node **"]);
        flags.net = true;
        file.merge(flags);
        assert_eq!(file.exec, [pat("make **"), pat("node **")]);
        assert!(file.net);
        let lines = file.describe();
        assert_eq!(lines[0], "exec: 'make **', 'node **'");
        assert_eq!(lines[2], "write: the workspace");
        assert!(lines.contains(&"network: granted".to_string()), "{lines:?}");
    }

    #[test]
    fn a_workflow_outside_the_workspace_or_in_wasm_is_untrusted_by_default() {
        let ws = Path::new("/ws");
        assert_eq!(untrusted_by_default(Path::new("/ws/flows/w.yaml"), ws), None);
        assert!(untrusted_by_default(Path::new("/elsewhere/w.yaml"), ws).unwrap().contains("outside"));
        assert!(untrusted_by_default(Path::new("/ws/w.wasm"), ws).unwrap().contains(".wasm"));
        assert!(untrusted_by_default(Path::new("/wsx/w.yaml"), ws).is_some());
    }

    #[test]
    fn asks_list_commands_agents_env_network_and_gate_grants() {
        let w = crate::spec::parse(
            "version: 1\nagents:\n  coder: { cli: claude, env: [API_KEY] }\n  fixer: { command: [./fix.sh, --x] }\n\
             steps:\n\
             - { name: fetch, run: 'curl -sS https://example.com' }\n\
             - { name: code, agent: coder, task: t, repair: { agent: fixer, attempts: 1 }, verify: [{ exit_code: 0 }] }\n\
             - { name: g, gate: gates/g.wasm, grants: { exec: ['git **'], write: [out], read: [/etc, docs] } }\n",
            "w.yaml",
        )
        .unwrap();
        let asks = Asks::of(&w, Path::new("/defs"), Path::new("/ws"), &[]);
        let whats: Vec<String> = asks.asks.iter().map(|a| format!("{}: {}", a.by, a.what())).collect();
        assert_eq!(
            whats,
            [
                "step `fetch`: exec curl -sS https://example.com",
                "step `g`, gate `gates/g.wasm`: gate exec 'git **'",
                "step `g`, gate `gates/g.wasm`: gate write /ws/out",
                "step `g`, gate `gates/g.wasm`: gate read /etc",
                "agent `coder`: agent claude",
                "agent `coder`: env API_KEY",
                "agent `coder`: network",
                "agent `fixer`: agent ./fix.sh --x",
            ]
        );
        let refusals = asks.refusals(&Policy::default());
        assert_eq!(refusals.len(), 8);
        let flags: Vec<&str> = refusals.iter().filter_map(|r| r.flag.as_deref()).collect();
        assert_eq!(
            flags,
            [
                "--grant-exec 'curl **'",
                "--grant-exec 'git **'",
                "--grant-write '/ws/out'",
                "--grant-read '/etc'",
                "--grant-agent 'claude'",
                "--grant-env API_KEY",
                "--grant-net",
                "--grant-agent './fix.sh'",
            ]
        );
        let all = Policy {
            exec: vec![pat("curl **"), pat("git **")],
            agents: vec![pat("claude"), pat("./fix.sh")],
            write: vec!["/ws".into()],
            read: vec!["/etc".into()],
            env: vec!["API_KEY".into()],
            net: true,
            ..Policy::default()
        };
        assert_eq!(asks.refusals(&all), []);
    }

    #[test]
    fn the_trust_of_a_run_round_trips_through_the_store() {
        assert_eq!(Trust::Trusted.to_stored(), None);
        assert_eq!(Trust::from_stored(None).unwrap(), Trust::Trusted);
        let mut p = policy(&["make **"]);
        p.net = true;
        let stored = Trust::Untrusted(p.clone()).to_stored().unwrap();
        assert_eq!(Trust::from_stored(Some(&stored)).unwrap(), Trust::Untrusted(p));
        assert!(Trust::from_stored(Some("{\"exec\": [\"* x\"]}")).is_err());
    }

    #[test]
    fn the_confinement_writes_the_workspace_and_hides_the_homes() {
        let mut p = policy(&[]);
        p.write = vec!["/ws/sub".into(), "/cache".into()];
        p.read = vec!["/home/me/data".into()];
        let env = vec![(OsString::from("HOME"), OsString::from("/home/me"))];
        let c = confinement(&p, &Asks::default(), Path::new("/ws"), &env);
        // No private temp dir yet (a run makes one before it prepares the confinement).
        assert_eq!(c.writable, [PathBuf::from("/ws"), PathBuf::from("/cache")]);
        assert_eq!(c.read_only, [PathBuf::from("/ws/.greenlight")]);
        assert_eq!(c.readable, [PathBuf::from("/home/me/data")]);
        assert_eq!(c.hidden, [PathBuf::from("/home/me"), PathBuf::from("/root"), PathBuf::from("/home")]);
        assert!(!c.network);
    }

    #[test]
    fn a_changed_policy_file_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().canonicalize().unwrap();
        let file = ws.join(POLICY_FILE);
        std::fs::write(&file, "exec = []\n").unwrap();
        let mut p = policy(&[]);
        p.file = Some(file.clone());
        let trust = Trust::Untrusted(p);
        assert!(PolicyFileGuard::before(&trust, &ws).unwrap().after().is_none());
        let guard = PolicyFileGuard::before(&trust, &ws).unwrap();
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &file).unwrap();
        let reason = guard.after().unwrap();
        assert!(reason.contains("put back as it was"), "{reason}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "exec = []\n");
        assert!(!std::fs::symlink_metadata(&file).unwrap().file_type().is_symlink());
        assert!(PolicyFileGuard::before(&Trust::Trusted, &ws).is_none());
    }

    #[test]
    fn a_refusal_at_spawn_names_the_grant() {
        let p = policy(&["echo **"]);
        let argv: Vec<String> = ["sh", "-c", "curl x | sh"].iter().map(|s| s.to_string()).collect();
        let refusal = exec_refusal(&p, "s", &argv, Path::new("/bin/sh")).unwrap();
        assert!(refusal.contains("--grant-exec 'sh -c *'"), "{refusal}");
        let argv: Vec<String> = ["echo", "; curl evil"].iter().map(|s| s.to_string()).collect();
        assert_eq!(exec_refusal(&p, "s", &argv, Path::new("/bin/echo")), None);
    }
}
