//! Rendering templates with values: plain text for agent tasks, environment values and gate
//! parameters ([`render_text`]); shell commands for `run:` steps ([`render_shell`]), where a value
//! can never become code; and the environment variables that carry the same values ([`exports`]).
//!
//! # Values
//! A step's output is used with **one** trailing line ending trimmed (`\n` or `\r\n`): the ending of
//! the last line is not part of the content, so `echo hi` gives `hi`. Only one is trimmed: further
//! blank lines the step printed are content and are kept. A JSON field
//! (`steps.a.output.items.0.name`) parses the whole output as JSON and yields a string field as the
//! string itself, any other value as compact JSON text (`3`, `true`, `null`, `{"k":1}`), like
//! `jq -r -c`. An exit code renders as its decimal number. A value containing NUL is refused:
//! no argument or environment variable can carry it.
//!
//! # Shell commands
//! [`render_shell`] reads the command the way POSIX `sh` does (a reading on which dash and bash
//! agree) to find the quoting context each `{{ ... }}` lands in, and writes the value so that the
//! shell reads it back verbatim, as data and never as syntax:
//!
//! | the template is                      | the value is written as                 | e.g. for `a $b` |
//! |--------------------------------------|-----------------------------------------|-----------------|
//! | bare (also inside `$( )`, `( )`)     | one single-quoted word                  | `'a $b'`        |
//! | inside `"..."`                       | `"` closed, a single-quoted word, `"` reopened | `"'a $b'"` |
//! | inside `'...'`                       | itself, each `'` as `'\''`              | `a $b`          |
//! | in a `#` comment                     | single-quoted, newlines as spaces       | `'a $b'`        |
//!
//! So a bare value is exactly one word (an empty one is `''`), and `echo "got {{ steps.a.output }}"`
//! prints the output verbatim. Single quotes are the only quoting with no escapes inside, which is
//! why double-quoted values are not backslash-escaped: the result does not depend on the shell's
//! locale (in some multibyte locales a backslash byte can belong to the previous character). A
//! backslash-newline is removed before anything else is read, as the shell does, except inside
//! single quotes, comments and here-documents. Where dash and bash split commands differently
//! (`&>`, `[[ ... && ... ]]`), the checks below follow both readings.
//!
//! Refused, with an error that says what to write instead. The decision needs only the command
//! text, so [`check_shell`] reports it before a run:
//! - a template right after `\` or `$` (they would combine with the quoting);
//! - inside backquotes (use `$( )`), `${...}`, arithmetic (`$(( ))`, `(( ))`), bash's `$'...'` and
//!   `$"..."`, a here-document's body or delimiter;
//! - where the value would run as code again: the arguments of `eval`, the command string of
//!   `sh -c` (bash, dash and the other shells, `su -c`); pass the value as an argument after the
//!   command string (`sh -c 'echo "$1"' sh {{ v }}`) or read it from the environment;
//! - where bash expands a value a second time, even a quoted one: operands of `[[ ]]` and `let`
//!   and array subscripts (`arr[{{ v }}]=x`), which it evaluates as arithmetic (running any `$( )`
//!   in a subscript of the value), and the target of `>&`/`<&` (`>&WORD` is re-expanded when WORD
//!   is not a descriptor number);
//! - anything after a construct whose reading differs between shells or that this reader does not
//!   follow (`case` inside `( )` or `$( )`, `alias`, `$[ ]`, a backslash in `$'...'`, a here-document
//!   begun inside `$( )` and not ended there, bash's `NAME=( )` arrays — after an error in one,
//!   bash goes on at the next line of the text, which may be inside a value): the error names the
//!   construct and its line.
//!
//! What escaping cannot do: it controls how the shell *reads* the command, not what a program does
//! with the words it is given. These still do what they do:
//! - a program that runs a value as code: `python -c`, `awk` and `sed` programs, `ssh host CMD`,
//!   `sh` reading a value as its script (`sh <<< {{ v }}`, `echo {{ v }} | sh`, `sh {{ v }}`), a
//!   shell function calling `eval "$1"`;
//! - bash expanding a value a second time where no template is in sight: arithmetic on a variable
//!   declared `-i`, builtins given a value as a variable name (`printf -v`, `read`, `unset`,
//!   `test -v`);
//! - a program reading a value as options (`rm {{ v }}` with `-rf`: write `rm -- {{ v }}`);
//! - a value as the command name, or a command name computed when the command runs
//!   (`$CMD {{ v }}` with `CMD=eval`).
//!
//! Give such programs values as data (`awk -v`, `jq --arg`, `"$GREENLIGHT_..."`).
//!
//! # Environment
//! A `run:` command also gets each value it references as an environment variable (see
//! [`export_name`]): `GREENLIGHT_VAR_<NAME>`, `GREENLIGHT_STEP_<NAME>_OUTPUT` (the whole trimmed
//! output, also for a reference to one of its JSON fields) and `GREENLIGHT_STEP_<NAME>_EXIT_CODE`,
//! where `<NAME>` is the name in upper case with every character other than `A-Z`/`0-9` as `_`.

use std::collections::BTreeMap;
use std::fmt;

use crate::spec::template::{self, Part, Reference, Template};

/// The largest single argument or `NAME=value` environment string Linux accepts (`MAX_ARG_STRLEN`
/// is 32 pages, including the terminating NUL). Larger values fail here with a clear message
/// rather than at spawn with `E2BIG`.
pub const MAX_ARG_BYTES: usize = 32 * 4096 - 1;

/// What templates can refer to: the run's variables and the results of finished steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values {
    vars: BTreeMap<String, String>,
    steps: BTreeMap<String, StepValues>,
}

/// The results of one finished step, as its templates see them.
#[derive(Debug, Clone, PartialEq)]
pub struct StepValues {
    /// Everything the step printed (untrimmed; [`trim_output`] is applied when it is used).
    pub output: String,
    /// `None` when the step has no exit code (killed by a signal, or a gate); a reference to it is
    /// then an error.
    pub exit_code: Option<i32>,
}

impl Values {
    pub fn new() -> Values {
        Values::default()
    }

    pub fn set_var(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    pub fn set_step(&mut self, name: impl Into<String>, output: impl Into<String>, exit_code: Option<i32>) {
        self.steps.insert(name.into(), StepValues { output: output.into(), exit_code });
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub fn step(&self, name: &str) -> Option<&StepValues> {
        self.steps.get(name)
    }

    /// The text a reference renders to.
    pub fn resolve(&self, reference: &Reference) -> Result<String, RenderError> {
        self.lookup(reference).map_err(|message| RenderError { message, offset: None })
    }

    fn lookup(&self, reference: &Reference) -> Result<String, String> {
        match reference {
            Reference::Var(name) => self.vars.get(name).cloned().ok_or_else(|| {
                format!(
                    "`{reference}`: there is no var `{name}`; define it under `vars:` or pass \
                     --var {name}=VALUE"
                )
            }),
            Reference::StepExitCode { step } => match self.step_values(reference, step)?.exit_code {
                Some(code) => Ok(code.to_string()),
                None => {
                    Err(format!("`{reference}`: step `{step}` has no exit code (it did not exit normally)"))
                }
            },
            Reference::StepOutput { step, path } => {
                let output = &self.step_values(reference, step)?.output;
                if !path.is_empty() {
                    return json_field(reference, output, path);
                }
                Ok(trim_output(output).to_string())
            }
        }
    }

    fn step_values(&self, reference: &Reference, step: &str) -> Result<&StepValues, String> {
        self.steps
            .get(step)
            .ok_or_else(|| format!("`{reference}`: step `{step}` has not finished, so it has no results yet"))
    }
}

/// The output with one trailing `\n` or `\r\n` removed.
pub fn trim_output(output: &str) -> &str {
    match output.strip_suffix('\n') {
        Some(rest) => rest.strip_suffix('\r').unwrap_or(rest),
        None => output,
    }
}

fn json_field(reference: &Reference, output: &str, path: &[String]) -> Result<String, String> {
    let Reference::StepOutput { step, .. } = reference else { unreachable!("only outputs have fields") };
    let root: serde_json::Value = serde_json::from_str(output).map_err(|e| {
        format!(
            "`{reference}`: the output of step `{step}` is not JSON ({e}), so it has no field `{}`",
            path.join(".")
        )
    })?;
    let mut value = &root;
    for (depth, field) in path.iter().enumerate() {
        let at = if depth == 0 { "the output".to_string() } else { format!("`{}`", path[..depth].join(".")) };
        value = match value {
            serde_json::Value::Object(map) => map.get(field).ok_or_else(|| {
                let keys: Vec<&str> = map.keys().map(String::as_str).take(10).collect();
                format!(
                    "`{reference}`: {at} of step `{step}` has no field `{field}` (its fields: {})",
                    if keys.is_empty() { "none".to_string() } else { keys.join(", ") }
                )
            })?,
            serde_json::Value::Array(items) => {
                let index: usize = field.parse().map_err(|_| {
                    format!("`{reference}`: {at} of step `{step}` is an array; `{field}` is not an index")
                })?;
                items.get(index).ok_or_else(|| {
                    format!(
                        "`{reference}`: {at} of step `{step}` has {} elements, so there is no element \
                         {index}",
                        items.len()
                    )
                })?
            }
            other => {
                return Err(format!(
                    "`{reference}`: {at} of step `{step}` is {}, which has no field `{field}`",
                    json_kind(other)
                ));
            }
        };
    }
    Ok(match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A template that could not be rendered. `offset` is the byte offset in the template text of the
/// problem, when the problem has a place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    pub message: String,
    pub offset: Option<usize>,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RenderError {}

impl From<template::TemplateError> for RenderError {
    fn from(e: template::TemplateError) -> RenderError {
        RenderError { message: e.message, offset: Some(e.offset) }
    }
}

/// Each expression with the byte offset of its `{{` in the template text.
fn expressions(template: &Template) -> impl Iterator<Item = (usize, &Reference, &str)> {
    template
        .parts
        .iter()
        .scan(0, |offset, part| {
            let start = *offset;
            Some(match part {
                Part::Text(text) => {
                    *offset += text.len();
                    None
                }
                Part::Expr { reference, source } => {
                    *offset += source.len();
                    Some((start, reference, source.as_str()))
                }
            })
        })
        .flatten()
}

fn value_at(values: &Values, reference: &Reference, offset: usize) -> Result<String, RenderError> {
    let value = values.lookup(reference).map_err(|message| RenderError { message, offset: Some(offset) })?;
    if value.contains('\0') {
        return Err(RenderError {
            message: format!(
                "`{reference}` contains a NUL byte, which no argument or environment variable can carry"
            ),
            offset: Some(offset),
        });
    }
    Ok(value)
}

/// Plain substitution, for text that no shell reads: agent tasks, environment values, gate
/// parameters.
pub fn render_text(template: &Template, values: &Values) -> Result<String, RenderError> {
    let mut out = String::new();
    let mut offset = 0;
    for part in &template.parts {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Expr { reference, .. } => out.push_str(&value_at(values, reference, offset)?),
        }
        offset += part_len(part);
    }
    Ok(out)
}

fn part_len(part: &Part) -> usize {
    match part {
        Part::Text(text) => text.len(),
        Part::Expr { source, .. } => source.len(),
    }
}

/// Renders a `run:` command for `sh -c`, each value escaped for the shell context it lands in (see
/// the module documentation for the rules and what is refused).
pub fn render_shell(command: &str, values: &Values) -> Result<String, RenderError> {
    let template = template::parse(command)?;
    let contexts = shell_contexts(&template)?;
    let mut out = String::with_capacity(command.len());
    let mut contexts = contexts.into_iter();
    let mut offset = 0;
    for part in &template.parts {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Expr { reference, .. } => {
                let value = value_at(values, reference, offset)?;
                let context = contexts.next().expect("one context per expression");
                write_value(&mut out, &value, context);
            }
        }
        offset += part_len(part);
    }
    if out.len() > MAX_ARG_BYTES {
        return Err(RenderError {
            message: format!(
                "the rendered command is {} bytes, more than the {MAX_ARG_BYTES} one argument to `sh -c` \
                 may hold; have the earlier step write its output to a file and read that file instead",
                out.len()
            ),
            offset: None,
        });
    }
    Ok(out)
}

/// Checks, without values, that every expression of a `run:` command is valid and lands in a shell
/// context [`render_shell`] accepts.
pub fn check_shell(command: &str) -> Result<(), RenderError> {
    shell_contexts(&template::parse(command)?).map(drop)
}

fn shell_contexts(template: &Template) -> Result<Vec<Context>, RenderError> {
    let text: String = template
        .parts
        .iter()
        .map(|part| match part {
            Part::Text(text) => text.as_str(),
            Part::Expr { source, .. } => source.as_str(),
        })
        .collect();
    let mut toks = Vec::new();
    let mut offset = 0;
    for part in &template.parts {
        match part {
            Part::Text(text) => toks.extend(text.char_indices().map(|(i, c)| (offset + i, Tok::Char(c)))),
            Part::Expr { .. } => toks.push((offset, Tok::Template)),
        }
        offset += part_len(part);
    }
    let decisions = Scanner::new(toks).run();
    let mut contexts = Vec::with_capacity(decisions.len());
    for ((offset, reference, source), decision) in expressions(template).zip(decisions) {
        match decision {
            Ok(context) => contexts.push(context),
            Err(refusal) => {
                return Err(RenderError {
                    message: refusal.message(source, reference, &text),
                    offset: Some(offset),
                });
            }
        }
    }
    Ok(contexts)
}

/// Writes `value` so that the shell reads it back verbatim in `context`.
fn write_value(out: &mut String, value: &str, context: Context) {
    match context {
        Context::Bare => single_quoted(out, value),
        Context::Comment => single_quoted(out, &value.replace('\n', " ")),
        Context::SingleQuoted => out.push_str(&value.replace('\'', r"'\''")),
        Context::DoubleQuoted if value.is_empty() => {}
        Context::DoubleQuoted => {
            out.push('"');
            single_quoted(out, value);
            out.push('"');
        }
    }
}

/// `'value'`, each `'` written as `'\''` (close, escaped quote, reopen).
fn single_quoted(out: &mut String, value: &str) {
    out.push('\'');
    out.push_str(&value.replace('\'', r"'\''"));
    out.push('\'');
}

/// The environment variables a command gets for the values it references: sorted by name, each
/// once. Two references that map to the same name with different values are an error (rename one
/// of the vars or steps); [`export_name`] lets validation find such clashes early.
pub fn exports<'a>(
    references: impl IntoIterator<Item = &'a Reference>,
    values: &Values,
) -> Result<Vec<(String, String)>, RenderError> {
    let mut out: BTreeMap<String, (String, Reference)> = BTreeMap::new();
    for reference in references {
        let exported = match reference {
            Reference::StepOutput { step, path } if !path.is_empty() => {
                Reference::StepOutput { step: step.clone(), path: Vec::new() }
            }
            other => other.clone(),
        };
        let name = export_name(reference);
        let value = values.resolve(&exported)?;
        if value.contains('\0') {
            return Err(RenderError {
                message: format!("`{exported}` contains a NUL byte, which no environment variable can carry"),
                offset: None,
            });
        }
        if name.len() + 1 + value.len() > MAX_ARG_BYTES {
            return Err(RenderError {
                message: format!(
                    "`{exported}` is {} bytes, too large for the environment variable {name} (at most \
                     {MAX_ARG_BYTES}); have the step write a file and read that instead",
                    value.len()
                ),
                offset: None,
            });
        }
        if let Some((previous, first)) = out.get(&name)
            && *previous != value
        {
            return Err(RenderError {
                message: format!(
                    "`{first}` and `{exported}` would both be exported as {name}; rename one of them"
                ),
                offset: None,
            });
        }
        out.insert(name, (value, exported));
    }
    Ok(out.into_iter().map(|(name, (value, _))| (name, value)).collect())
}

/// The environment variable that carries a reference's value: `GREENLIGHT_VAR_<NAME>`,
/// `GREENLIGHT_STEP_<NAME>_OUTPUT` (for the output and for any of its JSON fields) or
/// `GREENLIGHT_STEP_<NAME>_EXIT_CODE`; `<NAME>` upper-cased, each character other than `A-Z`, `0-9`
/// as `_` (`steps.unit-tests.output` → `GREENLIGHT_STEP_UNIT_TESTS_OUTPUT`).
pub fn export_name(reference: &Reference) -> String {
    fn mangle(name: &str) -> String {
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
    }
    match reference {
        Reference::Var(name) => format!("GREENLIGHT_VAR_{}", mangle(name)),
        Reference::StepOutput { step, .. } => format!("GREENLIGHT_STEP_{}_OUTPUT", mangle(step)),
        Reference::StepExitCode { step } => format!("GREENLIGHT_STEP_{}_EXIT_CODE", mangle(step)),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a command the way sh does, far enough to know each template's quoting context.
//
// The scanner walks the literal text with the templates in place. A template's context depends
// only on the text before it, and the value written for it leaves the shell in the same state as
// the template's absence would, so literal text alone decides every context. Constructs whose
// reading differs between shells or that the scanner does not follow put it in an "unknown" state:
// text before them was read soundly; templates after them are refused.

/// Where a template lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Bare,
    SingleQuoted,
    DoubleQuoted,
    Comment,
}

/// Why a template is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    AfterBackslash,
    AfterDollar,
    Backquotes,
    AnsiCQuote,
    LocaleQuote,
    ParameterExpansion,
    Arithmetic,
    HeredocBody,
    HeredocDelimiter,
    Eval,
    BashArithmetic(String),
    ArraySubscript,
    DuplicationTarget,
    ShellCommandString(String),
    Unknown { what: &'static str, offset: usize },
}

impl Refusal {
    fn message(&self, source: &str, reference: &Reference, command: &str) -> String {
        let env = export_name(reference);
        let why = match self {
            Refusal::AfterBackslash => {
                "comes right after a backslash, which would escape the quoting that keeps the value one \
                 word; remove the backslash"
                    .to_string()
            }
            Refusal::AfterDollar => format!(
                "comes right after `$`, which would combine with the value; the template is already \
                 replaced by the value (drop the `$`), or read the environment variable \"${env}\""
            ),
            Refusal::Backquotes => {
                "is inside backquotes, where quotes do not nest reliably; use `$( ... )` instead".to_string()
            }
            Refusal::AnsiCQuote => {
                "is inside `$'...'`, a bash quote that interprets backslashes; use '...' or \"...\""
                    .to_string()
            }
            Refusal::LocaleQuote => "is inside `$\"...\"`, a bash translated string; use \"...\"".to_string(),
            Refusal::ParameterExpansion => format!(
                "is inside a parameter expansion `${{...}}`, whose quoting differs between shells; use the \
                 environment variable instead, as in \"${{X:-${env}}}\""
            ),
            Refusal::Arithmetic => format!(
                "is inside arithmetic (`$(( ))` or `(( ))`), where the value would be evaluated as an \
                 expression (bash runs commands found in array subscripts); check that \"${env}\" is a \
                 number first and use that"
            ),
            Refusal::HeredocBody => format!(
                "is inside a here-document, where a line of the value could end the document; write \
                 \"${env}\" in the body instead (an unquoted here-document expands it safely), or use \
                 printf '%s\\n' {source}"
            ),
            Refusal::HeredocDelimiter => {
                "is a here-document delimiter; write the delimiter literally".to_string()
            }
            Refusal::Eval => format!(
                "is an argument of `eval`, which runs its arguments as shell code: the value would become \
                 code; use the value as data (\"${env}\") instead of evaluating it"
            ),
            Refusal::BashArithmetic(name) => format!(
                "is an operand of `{name}`, which bash may evaluate as arithmetic, running any `$( )` in \
                 an array subscript of the value; compare with `[ ... ]` (test) instead, which accepts \
                 only numbers"
            ),
            Refusal::ArraySubscript => "is an array subscript, which bash evaluates as arithmetic, running \
                                        any `$( )` in the value; use the value as an element, not an index"
                .to_string(),
            Refusal::DuplicationTarget => "is the target of `>&` or `<&`, which bash expands a second time \
                                           when it is not a file descriptor number; redirect to a file with \
                                           `> FILE 2>&1` instead"
                .to_string(),
            Refusal::ShellCommandString(shell) => format!(
                "is in the command string of `{shell} -c`, which runs it as shell code: the value would \
                 become code; pass it as an argument after the command string instead, as in \
                 `{shell} -c 'echo \"$1\"' {shell} {source}`, or read \"${env}\""
            ),
            Refusal::Unknown { what, offset } => {
                let (line, column) = line_column(command, *offset);
                format!(
                    "cannot be escaped: greenlight does not follow how the shell reads {what} (line {line}, \
                     column {column} of the command), so it cannot tell the quoting context of what comes \
                     after it; move the template before it, or read \"${env}\" instead"
                )
            }
        };
        format!("`{source}` {why}")
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Char(char),
    Template,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmdKind {
    /// The command itself.
    Top,
    /// `( ... )`
    Subshell,
    /// `$( ... )`
    Substitution,
}

/// One word being read, with just enough of it kept to recognize keywords and delimiters.
#[derive(Debug, Default)]
struct Word {
    /// The word's text with quotes removed.
    text: String,
    quoted: bool,
    expansion: bool,
    template: bool,
}

impl Word {
    fn plain(&self) -> Option<&str> {
        (!self.quoted && !self.expansion && !self.template).then_some(self.text.as_str())
    }
}

/// After a shell's name (`sh`, `bash -e`, ...), until its command string or script.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShellArgs {
    shell: String,
    /// A `-c` (or `-ec`, ...) was seen: the next operand is shell code.
    command_string: bool,
    /// The previous word was an option whose argument comes next (`-o pipefail`).
    option_argument: bool,
    /// `su`/`runuser`: a user name may come before `-c`.
    user_operand: bool,
}

/// A word of the simple command being read.
#[derive(Debug)]
enum Filed {
    /// `None` for a word with an expansion in it, whose text is known only when the command runs.
    Word(Option<String>),
    /// Where dash starts a new command and bash does not (`&>`, `&&` inside `[[ ]]`): both
    /// readings are followed.
    Restart,
}

/// A command level: the top, a subshell or a command substitution.
#[derive(Debug)]
struct Cmd {
    kind: CmdKind,
    /// Words of the current simple command (not counting reserved words and redirection targets).
    words: Vec<Filed>,
    word: Option<Word>,
    /// The next word is a redirection target.
    redirect_target: bool,
    /// ... of `>&` or `<&`.
    duplication_target: bool,
    /// Inside bash's `[[ ... ]]`, where `&&`, `||`, `(`, `)`, `<` and `>` do not end the command,
    /// with the depth of parentheses.
    double_brackets: Option<u32>,
    /// The next word is a here-document delimiter (`true`: `<<-`, leading tabs stripped).
    heredoc_delimiter: Option<bool>,
    shell: Option<ShellArgs>,
}

impl Cmd {
    fn new(kind: CmdKind) -> Cmd {
        Cmd {
            kind,
            words: Vec::new(),
            word: None,
            redirect_target: false,
            duplication_target: false,
            double_brackets: None,
            heredoc_delimiter: None,
            shell: None,
        }
    }

    fn end_command(&mut self) {
        self.words.clear();
        self.shell = None;
        self.redirect_target = false;
        self.duplication_target = false;
        self.double_brackets = None;
    }

    /// The names the simple command read so far may have: its first word after assignments,
    /// `command` and `builtin`, and the first after each [`Filed::Restart`]. Options before a name
    /// are skipped (`time -p`, `command -p`), and so are words with an expansion, which may expand
    /// to nothing (`$SUDO eval ...`). The last item is `None` while the last reading has no name.
    fn command_names(&self) -> Vec<Option<&str>> {
        let mut names = vec![None];
        for filed in &self.words {
            match filed {
                Filed::Restart => names.push(None),
                Filed::Word(Some(w))
                    if !is_assignment(w) && !w.starts_with('-') && w != "command" && w != "builtin" =>
                {
                    let last = names.last_mut().expect("never empty");
                    if last.is_none() {
                        *last = Some(w.as_str());
                    }
                }
                Filed::Word(_) => {}
            }
        }
        names
    }

    /// Whether the next word would be the first of a command (all before it since the last
    /// restart are assignments).
    fn at_command_position(&self) -> bool {
        self.words
            .iter()
            .rev()
            .take_while(|f| !matches!(f, Filed::Restart))
            .all(|f| matches!(f, Filed::Word(Some(w)) if is_assignment(w)))
    }

    /// Whether the word being read may be an array element assignment, `NAME[...`, whose
    /// subscript bash evaluates as arithmetic.
    fn in_array_subscript(&self) -> bool {
        let Some(word) = &self.word else { return false };
        let Some((name, subscript)) = word.text.split_once('[') else { return false };
        let assigning = match self.command_names().last().copied().flatten() {
            None => true,
            Some(name) => matches!(name, "declare" | "typeset" | "local" | "export" | "readonly"),
        };
        assigning
            && !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !subscript.contains(']')
    }
}

#[derive(Debug)]
enum Frame {
    Cmd(Cmd),
    DoubleQuote {
        locale: bool,
    },
    /// `${ ... }`; `in_double_quotes` when the expansion itself is inside `"..."`.
    Brace {
        in_double_quotes: bool,
    },
    /// `$(( ... ))` or `(( ... ))`, with the depth of parentheses inside.
    Arithmetic {
        depth: u32,
    },
}

/// Leaf states: text that is read to its end without nesting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    SingleQuote,
    AnsiC,
    Backquote,
    Comment,
    Heredoc,
}

#[derive(Debug)]
struct Heredoc {
    delimiter: String,
    strip_tabs: bool,
    quoted: bool,
    depth: usize,
}

struct Scanner {
    toks: Vec<(usize, Tok)>,
    i: usize,
    stack: Vec<Frame>,
    mode: Mode,
    heredocs: Vec<Heredoc>,
    unknown: Option<(&'static str, usize)>,
    decisions: Vec<Result<Context, Refusal>>,
}

const RESERVED: &[&str] = &[
    "!", "{", "}", "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "esac", "time", "in",
    "coproc",
];
const SHELLS: &[&str] =
    &["sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "pdksh", "ash", "yash", "posh", "su", "runuser"];

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

impl Scanner {
    fn new(toks: Vec<(usize, Tok)>) -> Scanner {
        Scanner {
            toks,
            i: 0,
            stack: vec![Frame::Cmd(Cmd::new(CmdKind::Top))],
            mode: Mode::Normal,
            heredocs: Vec::new(),
            unknown: None,
            decisions: Vec::new(),
        }
    }

    /// The token `ahead` places on, as the shell reads it: outside quotes, in double quotes and in
    /// expansions a backslash-newline pair is removed before anything else (`$\<newline>(` is
    /// `$(`); in single quotes, comments, backquotes and here-documents it is read as it is.
    fn peek(&self, ahead: usize) -> Option<Tok> {
        if self.mode != Mode::Normal {
            return self.raw(ahead);
        }
        let mut j = self.i;
        for _ in 0..ahead {
            j = self.skip_continuations(j) + 1;
        }
        self.toks.get(self.skip_continuations(j)).map(|&(_, t)| t)
    }

    /// The token `ahead` places on, with no line continuations removed.
    fn raw(&self, ahead: usize) -> Option<Tok> {
        self.toks.get(self.i + ahead).map(|&(_, t)| t)
    }

    /// Moves past `count` tokens as [`Scanner::peek`] counts them.
    fn advance(&mut self, count: usize) {
        if self.mode != Mode::Normal {
            self.i += count;
            return;
        }
        for _ in 0..count {
            self.i = self.skip_continuations(self.i) + 1;
        }
    }

    fn skip_continuations(&self, mut j: usize) -> usize {
        while let (Some((_, Tok::Char('\\'))), Some((_, Tok::Char('\n')))) =
            (self.toks.get(j), self.toks.get(j + 1))
        {
            j += 2;
        }
        j
    }

    fn offset(&self) -> usize {
        self.toks.get(self.i).map_or(0, |&(o, _)| o)
    }

    fn give_up(&mut self, what: &'static str) {
        if self.unknown.is_none() {
            self.unknown = Some((what, self.offset()));
        }
    }

    /// The innermost command level (there is always one: the top).
    fn cmd(&mut self) -> &mut Cmd {
        self.stack
            .iter_mut()
            .rev()
            .find_map(|f| match f {
                Frame::Cmd(c) => Some(c),
                _ => None,
            })
            .expect("the top command level is never popped")
    }

    fn word(&mut self) -> &mut Word {
        self.cmd().word.get_or_insert_with(Word::default)
    }

    fn run(mut self) -> Vec<Result<Context, Refusal>> {
        while self.i < self.toks.len() {
            if let Some((what, offset)) = self.unknown {
                let remaining = self.toks[self.i..].iter().filter(|(_, t)| *t == Tok::Template).count();
                self.decisions.extend((0..remaining).map(|_| Err(Refusal::Unknown { what, offset })));
                break;
            }
            if self.mode == Mode::Normal {
                self.i = self.skip_continuations(self.i);
                if self.i >= self.toks.len() {
                    break;
                }
            }
            match self.mode {
                Mode::Normal => match self.stack.last().expect("never empty") {
                    Frame::Cmd(_) => self.step_cmd(),
                    Frame::DoubleQuote { locale } => {
                        let locale = *locale;
                        self.step_double_quote(locale)
                    }
                    Frame::Brace { in_double_quotes } => {
                        let in_double_quotes = *in_double_quotes;
                        self.step_brace(in_double_quotes)
                    }
                    Frame::Arithmetic { .. } => self.step_arithmetic(),
                },
                Mode::SingleQuote => self.step_single_quote(),
                Mode::AnsiC => self.step_ansi_c(),
                Mode::Backquote => self.step_backquote(),
                Mode::Comment => self.step_comment(),
                Mode::Heredoc => self.step_heredoc_line(),
            }
        }
        self.decisions
    }

    /// A template at the current position, in `context` unless something around it refuses it.
    fn template(&mut self, context: Result<Context, Refusal>) {
        self.advance(1);
        let context = match context {
            Ok(Context::Comment) => Ok(Context::Comment),
            context => context.and_then(|context| self.check_reevaluation().map(|()| context)),
        };
        if let Ok(Context::Bare | Context::SingleQuoted | Context::DoubleQuoted) = context {
            self.word().template = true;
        }
        self.decisions.push(context);
    }

    /// Refuses a template that some enclosing command would run as code.
    fn check_reevaluation(&self) -> Result<(), Refusal> {
        for frame in &self.stack {
            match frame {
                Frame::Brace { .. } => return Err(Refusal::ParameterExpansion),
                Frame::Arithmetic { .. } => return Err(Refusal::Arithmetic),
                Frame::Cmd(cmd) => {
                    if cmd.heredoc_delimiter.is_some() && std::ptr::eq(frame, self.innermost_cmd()) {
                        return Err(Refusal::HeredocDelimiter);
                    }
                    for name in cmd.command_names().into_iter().flatten() {
                        match name {
                            "eval" => return Err(Refusal::Eval),
                            "[[" | "let" => return Err(Refusal::BashArithmetic(name.to_string())),
                            _ => {}
                        }
                    }
                    if cmd.duplication_target {
                        return Err(Refusal::DuplicationTarget);
                    }
                    if cmd.in_array_subscript() {
                        return Err(Refusal::ArraySubscript);
                    }
                    if let Some(shell) = &cmd.shell
                        && shell.command_string
                        && !shell.option_argument
                    {
                        return Err(Refusal::ShellCommandString(shell.shell.clone()));
                    }
                }
                Frame::DoubleQuote { .. } => {}
            }
        }
        Ok(())
    }

    /// Gives up at an expansion in a here-document delimiter, which the shells read differently
    /// (dash does not expand there at all, not even to find where `$( )` ends).
    fn in_heredoc_delimiter(&mut self) -> bool {
        if self.cmd().heredoc_delimiter.is_some() {
            self.give_up("`$` or a backquote in a here-document delimiter");
            return true;
        }
        false
    }

    fn innermost_cmd(&self) -> &Frame {
        self.stack.iter().rev().find(|f| matches!(f, Frame::Cmd(_))).expect("top level")
    }

    /// Handles `$` at the current position (in a command, double quotes, `${}` or arithmetic).
    fn dollar(&mut self, in_command: bool) {
        if self.in_heredoc_delimiter() {
            return;
        }
        match self.peek(1) {
            Some(Tok::Template) => {
                self.advance(1);
                self.template(Err(Refusal::AfterDollar));
            }
            Some(Tok::Char('(')) if self.peek(2) == Some(Tok::Char('(')) => {
                self.word().expansion = true;
                self.advance(3);
                self.stack.push(Frame::Arithmetic { depth: 0 });
            }
            Some(Tok::Char('(')) => {
                self.word().expansion = true;
                self.advance(2);
                self.stack.push(Frame::Cmd(Cmd::new(CmdKind::Substitution)));
            }
            Some(Tok::Char('[')) => self.give_up("bash's `$[ ]` arithmetic"),
            Some(Tok::Char('{')) => {
                self.word().expansion = true;
                let in_double_quotes = matches!(self.stack.last(), Some(Frame::DoubleQuote { .. }));
                self.advance(2);
                self.stack.push(Frame::Brace { in_double_quotes });
            }
            Some(Tok::Char('\'')) if in_command => {
                self.word().quoted = true;
                self.advance(2);
                self.mode = Mode::AnsiC;
            }
            Some(Tok::Char('"')) if in_command => {
                self.word().quoted = true;
                self.advance(2);
                self.stack.push(Frame::DoubleQuote { locale: true });
            }
            _ => {
                let word = self.word();
                word.expansion = true;
                word.text.push('$');
                self.advance(1);
            }
        }
    }

    fn step_cmd(&mut self) {
        let Some(Tok::Char(c)) = self.peek(0) else {
            return self.template(Ok(Context::Bare));
        };
        // bash reads `NAME=(...)` as an array, and after an error in one it goes on with the next
        // line of the text: that line may be inside a quoted value.
        if c == '(' && self.cmd().word.as_ref().is_some_and(|w| w.text.ends_with('=')) {
            return self.give_up("bash's array assignment `NAME=( )`");
        }
        // Inside bash's `[[ ]]`, `&&`, `||` and parentheses do not end the command; for dash, which
        // has no `[[`, they do (and `<`, `>` are redirections for both readings).
        if matches!(c, '&' | '|' | '(' | ')') && self.cmd().double_brackets.is_some() {
            self.finish_word(); // which may be the closing `]]`
            let cmd = self.cmd();
            if let Some(depth) = cmd.double_brackets.as_mut() {
                match c {
                    '(' => *depth += 1,
                    ')' if *depth > 0 => *depth -= 1,
                    // dash would end a `$( )` here.
                    ')' => return self.give_up("`)` inside `[[ ]]`"),
                    _ => cmd.words.push(Filed::Restart),
                }
                return self.advance(1);
            }
        }
        match c {
            ' ' | '\t' => {
                self.finish_word();
                self.advance(1);
            }
            '\n' => {
                self.finish_word();
                let cmd = self.cmd();
                if cmd.double_brackets.is_some() {
                    // bash's `[[ ]]` may go on after a newline; dash's command ends.
                    let words = std::mem::take(&mut cmd.words);
                    let brackets = cmd.double_brackets;
                    cmd.end_command();
                    cmd.words = words;
                    cmd.words.push(Filed::Restart);
                    cmd.double_brackets = brackets;
                } else {
                    cmd.end_command();
                }
                self.advance(1);
                if !self.heredocs.is_empty() {
                    let depth = self.stack.len();
                    if self.heredocs.iter().all(|h| h.depth == depth) {
                        self.mode = Mode::Heredoc;
                    } else {
                        self.give_up("a here-document begun inside a nested command");
                    }
                }
            }
            // bash reads `&>` as a redirection, dash as `&` and `>`; the command goes on for bash.
            '&' if self.peek(1) == Some(Tok::Char('>')) => {
                self.finish_word();
                self.cmd().words.push(Filed::Restart);
                self.advance(1);
            }
            ';' | '&' | '|' => {
                self.finish_word();
                self.cmd().end_command();
                self.advance(1);
            }
            // bash's process substitution, part of a word even in the middle of one (dash cannot
            // parse it and runs nothing).
            '<' | '>' if self.peek(1) == Some(Tok::Char('(')) => {
                self.word().expansion = true;
                self.advance(2);
                self.stack.push(Frame::Cmd(Cmd::new(CmdKind::Substitution)));
            }
            '<' | '>' => {
                // A word of digits right before is a file descriptor number, not an argument.
                if self
                    .cmd()
                    .word
                    .as_ref()
                    .is_some_and(|w| w.plain().is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit())))
                {
                    self.cmd().word = None;
                }
                self.finish_word();
                self.advance(1);
                if c == '<' && self.peek(0) == Some(Tok::Char('<')) {
                    self.advance(1);
                    if self.peek(0) == Some(Tok::Char('<')) {
                        self.advance(1); // bash's here-string: the next word is plain data
                    } else {
                        let strip = self.peek(0) == Some(Tok::Char('-'));
                        if strip {
                            self.advance(1);
                        }
                        self.cmd().heredoc_delimiter = Some(strip);
                    }
                } else if let Some(Tok::Char(next @ ('>' | '&' | '|'))) = self.peek(0) {
                    self.advance(1);
                    self.cmd().duplication_target = next == '&';
                }
                self.cmd().redirect_target = true;
            }
            '(' => {
                // In the middle of a word and not `name()`: bash's extended glob `@(a|b)` (after
                // `shopt -s extglob`), part of the word; dash cannot parse it and runs nothing.
                if self.cmd().word.is_some() && !self.empty_parentheses() {
                    self.word().expansion = true;
                    self.advance(1);
                    self.stack.push(Frame::Cmd(Cmd::new(CmdKind::Substitution)));
                    return;
                }
                self.finish_word();
                if self.peek(1) == Some(Tok::Char('(')) {
                    self.advance(2);
                    self.stack.push(Frame::Arithmetic { depth: 0 });
                } else {
                    self.advance(1);
                    self.cmd().end_command();
                    self.stack.push(Frame::Cmd(Cmd::new(CmdKind::Subshell)));
                }
            }
            ')' => {
                self.finish_word();
                self.advance(1);
                if self.cmd().kind != CmdKind::Top {
                    let depth = self.stack.len();
                    if self.heredocs.iter().any(|h| h.depth == depth) {
                        return self.give_up("a here-document whose command ends before its body");
                    }
                    self.stack.pop();
                }
                // At the top level, `)` ends a `case` pattern and changes no quoting.
            }
            '\\' => match self.raw(1) {
                Some(Tok::Template) => {
                    self.i += 1;
                    self.template(Err(Refusal::AfterBackslash));
                }
                Some(Tok::Char(next)) => {
                    let word = self.word();
                    word.quoted = true;
                    word.text.push(next);
                    self.i += 2;
                }
                None => self.i += 1,
            },
            '\'' => {
                self.word().quoted = true;
                self.advance(1);
                self.mode = Mode::SingleQuote;
            }
            '"' => {
                self.word().quoted = true;
                self.advance(1);
                self.stack.push(Frame::DoubleQuote { locale: false });
            }
            '`' if self.in_heredoc_delimiter() => {}
            '`' => {
                self.word().expansion = true;
                self.advance(1);
                self.mode = Mode::Backquote;
            }
            '$' => self.dollar(true),
            '#' if self.cmd().word.is_none() => {
                self.advance(1);
                self.mode = Mode::Comment;
            }
            c => {
                self.word().text.push(c);
                self.advance(1);
            }
        }
    }

    /// Whether the `(` here is followed by `)`, as in a function definition `name ()`.
    fn empty_parentheses(&self) -> bool {
        (1..).map(|ahead| self.peek(ahead)).find(|t| !matches!(t, Some(Tok::Char(' ' | '\t'))))
            == Some(Some(Tok::Char(')')))
    }

    /// Ends the word being read at a command level and files it.
    fn finish_word(&mut self) {
        let depth = self.stack.len();
        let cmd = self.cmd();
        let Some(word) = cmd.word.take() else { return };
        if let Some(strip_tabs) = cmd.heredoc_delimiter.take() {
            cmd.redirect_target = false;
            if word.expansion {
                return self.give_up("a here-document delimiter with an expansion in it");
            }
            let quoted = word.quoted;
            self.heredocs.push(Heredoc { delimiter: word.text, strip_tabs, quoted, depth });
            return;
        }
        cmd.duplication_target = false;
        if std::mem::take(&mut cmd.redirect_target) {
            return;
        }
        let kind = cmd.kind;
        let plain = word.plain().map(str::to_string);
        // Quotes do not stop a word from naming a builtin or a program (`'alias'`, `"sh"`).
        let literal = (!word.expansion && !word.template).then_some(word.text.as_str());
        if literal == Some("alias") {
            return self.give_up("`alias`");
        }
        if let Some(text) = &plain {
            if text == "case" && kind != CmdKind::Top {
                return self.give_up("`case` inside `( )` or `$( )`");
            }
            let command_position = cmd.at_command_position();
            if command_position && text == "[[" {
                cmd.double_brackets = Some(0);
            } else if cmd.double_brackets == Some(0) && text == "]]" {
                cmd.double_brackets = None;
            }
            if command_position && RESERVED.contains(&text.as_str()) {
                return;
            }
        }
        // Follow `sh [OPTIONS] -c COMMAND_STRING [ARGS...]` (and `su [USER] -c COMMAND [USER]`).
        let text = word.text.as_str();
        cmd.shell = match cmd.shell.take() {
            Some(mut shell) if shell.option_argument => {
                shell.option_argument = false;
                Some(shell)
            }
            Some(mut shell) if (text.starts_with('-') || text.starts_with('+')) && !word.template => {
                if matches!(text, "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file") {
                    shell.option_argument = true;
                } else if text.starts_with('-')
                    && text[1..].chars().all(|c| c.is_ascii_alphabetic())
                    && text.contains('c')
                {
                    shell.command_string = true;
                }
                Some(shell)
            }
            // `su`'s user name may come anywhere among its options.
            Some(shell) if shell.user_operand && !shell.command_string => Some(shell),
            // The command string or the script: what follows are its arguments.
            Some(_) => None,
            None => literal
                .map(|t| t.rsplit('/').next().unwrap_or(t))
                .filter(|name| SHELLS.contains(name))
                .map(|name| ShellArgs {
                    shell: name.to_string(),
                    command_string: false,
                    option_argument: false,
                    user_operand: matches!(name, "su" | "runuser"),
                }),
        };
        cmd.words.push(Filed::Word((!word.expansion).then_some(word.text)));
    }

    fn step_double_quote(&mut self, locale: bool) {
        let Some(Tok::Char(c)) = self.peek(0) else {
            return self.template(if locale { Err(Refusal::LocaleQuote) } else { Ok(Context::DoubleQuoted) });
        };
        match c {
            '"' => {
                self.advance(1);
                self.stack.pop();
            }
            '\\' => match self.raw(1) {
                Some(Tok::Template) => {
                    self.i += 1;
                    self.template(Err(Refusal::AfterBackslash));
                }
                Some(Tok::Char(next @ ('$' | '`' | '"' | '\\'))) => {
                    self.word().text.push(next);
                    self.i += 2;
                }
                _ => {
                    self.word().text.push('\\');
                    self.i += 1;
                }
            },
            '$' => self.dollar(false),
            '`' if self.in_heredoc_delimiter() => {}
            '`' => {
                self.word().expansion = true;
                self.advance(1);
                self.mode = Mode::Backquote;
            }
            c => {
                self.word().text.push(c);
                self.advance(1);
            }
        }
    }

    fn step_brace(&mut self, in_double_quotes: bool) {
        let Some(Tok::Char(c)) = self.peek(0) else {
            return self.template(Err(Refusal::ParameterExpansion));
        };
        match c {
            '}' => {
                self.advance(1);
                self.stack.pop();
            }
            '\\' => match self.raw(1) {
                Some(Tok::Template) => {
                    self.i += 1;
                    self.template(Err(Refusal::ParameterExpansion));
                }
                _ => self.i += 2,
            },
            '$' if matches!(self.peek(1), Some(Tok::Char('\'' | '"'))) => {
                self.give_up("`$'` or `$\"` inside `${...}`")
            }
            '$' => self.dollar(false),
            '"' if !in_double_quotes => {
                self.advance(1);
                self.stack.push(Frame::DoubleQuote { locale: false });
            }
            '\'' if !in_double_quotes => {
                self.advance(1);
                self.mode = Mode::SingleQuote;
            }
            '"' | '\'' => self.give_up("quotes inside a double-quoted `${...}`"),
            '{' => self.give_up("`{` inside `${...}`"),
            '`' => {
                self.advance(1);
                self.mode = Mode::Backquote;
            }
            _ => self.advance(1),
        }
    }

    fn step_arithmetic(&mut self) {
        let Some(Tok::Char(c)) = self.peek(0) else {
            return self.template(Err(Refusal::Arithmetic));
        };
        let Some(Frame::Arithmetic { depth }) = self.stack.last() else { unreachable!("arithmetic frame") };
        let depth = *depth;
        let set_depth = |scanner: &mut Scanner, to: u32| {
            if let Some(Frame::Arithmetic { depth }) = scanner.stack.last_mut() {
                *depth = to;
            }
            scanner.i += 1;
        };
        match c {
            '(' => set_depth(self, depth + 1),
            ')' if depth > 0 => set_depth(self, depth - 1),
            ')' if self.peek(1) == Some(Tok::Char(')')) => {
                self.stack.pop();
                self.advance(2);
            }
            ')' => self.give_up("`((` that does not end with `))`"),
            '$' => self.dollar(false),
            '\'' | '"' | '`' | '\\' => self.give_up("quoting inside arithmetic"),
            _ => self.advance(1),
        }
    }

    fn step_single_quote(&mut self) {
        match self.peek(0) {
            Some(Tok::Template) => self.template(Ok(Context::SingleQuoted)),
            Some(Tok::Char('\'')) => {
                self.i += 1;
                self.mode = Mode::Normal;
            }
            Some(Tok::Char(c)) => {
                self.word().text.push(c);
                self.i += 1;
            }
            None => {}
        }
    }

    fn step_ansi_c(&mut self) {
        match self.peek(0) {
            Some(Tok::Template) => self.template(Err(Refusal::AnsiCQuote)),
            Some(Tok::Char('\'')) => {
                self.i += 1;
                self.mode = Mode::Normal;
            }
            // bash reads `\'` as a quote inside the string, dash as its end.
            Some(Tok::Char('\\')) => self.give_up("a backslash inside `$'...'`"),
            _ => self.i += 1,
        }
    }

    fn step_backquote(&mut self) {
        match self.peek(0) {
            Some(Tok::Template) => self.template(Err(Refusal::Backquotes)),
            Some(Tok::Char('`')) => {
                self.i += 1;
                self.mode = Mode::Normal;
            }
            Some(Tok::Char('\\')) => {
                if self.peek(1) == Some(Tok::Template) {
                    self.i += 1;
                    self.template(Err(Refusal::Backquotes));
                } else {
                    self.i += 2;
                }
            }
            Some(Tok::Char('\n')) => self.give_up("backquotes spanning lines"),
            _ => self.i += 1,
        }
    }

    fn step_comment(&mut self) {
        match self.peek(0) {
            Some(Tok::Template) => self.template(Ok(Context::Comment)),
            // The newline ends the comment and is read as a newline by the command level.
            Some(Tok::Char('\n')) => self.mode = Mode::Normal,
            _ => self.i += 1,
        }
    }

    /// Reads one line of the first pending here-document body.
    fn step_heredoc_line(&mut self) {
        let mut line = String::new();
        let mut has_template = false;
        while let Some(tok) = self.peek(0) {
            self.i += 1;
            match tok {
                Tok::Template => {
                    has_template = true;
                    self.decisions.push(Err(Refusal::HeredocBody));
                }
                Tok::Char('\n') => break,
                Tok::Char(c) => line.push(c),
            }
        }
        let heredoc = &self.heredocs[0];
        let candidate = if heredoc.strip_tabs { line.trim_start_matches('\t') } else { &line };
        if !has_template && candidate == heredoc.delimiter {
            self.heredocs.remove(0);
            if self.heredocs.is_empty() {
                self.mode = Mode::Normal;
            }
        } else if !heredoc.quoted && line.ends_with('\\') {
            self.give_up("a here-document line ending in a backslash");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    /// The shells every rendered command is run with: `/bin/sh` and, where installed, dash, bash
    /// and bash in POSIX mode.
    fn shells() -> Vec<Vec<&'static str>> {
        let mut shells = vec![vec!["/bin/sh"]];
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        for (path, args) in [("/usr/bin/dash", vec![]), ("/bin/bash", vec![]), ("/bin/bash", vec!["--posix"])]
        {
            let same_as_sh = std::fs::canonicalize(path).is_ok_and(|p| p == sh) && args.is_empty();
            if Path::new(path).exists() && !same_as_sh {
                let mut argv = vec![path];
                argv.extend(args);
                shells.push(argv);
            }
        }
        shells
    }

    /// Runs `command` with `sh -c` (and each other shell) in `dir`; returns stdout, asserting
    /// every shell printed the same and nothing created `PWNED`.
    fn run_in(dir: &Path, command: &str, env: &[(String, String)]) -> String {
        let mut first: Option<String> = None;
        for shell in shells() {
            let out = Command::new(shell[0])
                .args(&shell[1..])
                .arg("-c")
                .arg(command)
                .current_dir(dir)
                .env("HOME", "/home-of-the-runner")
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()
                .unwrap();
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert!(
                out.status.success(),
                "{shell:?} -c {command:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!dir.join("PWNED").exists(), "{shell:?} -c {command:?} ran a value as code");
            match &first {
                None => first = Some(stdout),
                Some(f) => assert_eq!(&stdout, f, "{shell:?} disagrees on {command:?}"),
            }
        }
        first.unwrap()
    }

    fn with_var(value: &str) -> Values {
        let mut values = Values::new();
        values.set_var("v", value);
        values
    }

    /// A command and what it prints for a value.
    type Case = (&'static str, fn(&str) -> String);

    const HOSTILE: &[&str] = &[
        "x; touch PWNED",
        "$(touch PWNED)",
        "`touch PWNED`",
        "'",
        "\"",
        "\\",
        "$HOME",
        "${HOME}",
        "*",
        "a\nb",
        "line\n",
        "\n\n",
        "-n",
        "-e",
        "",
        " ",
        "a  b\tc",
        "héllo wörld ✓ 中文 🚀",
        "'; touch PWNED; '",
        "\"; touch PWNED; \"",
        "\\\"; touch PWNED #",
        "'\"$(touch PWNED)\"'",
        "a'b\"c$d`e\\f",
        "$((1+1))",
        "!!",
        "~",
        "~root",
        "{a,b}",
        "#",
        "# not a comment",
        ")",
        "}}",
        "{{ vars.v }}",
        "\\'",
        "'\\''",
        "EOF",
        "x\ntouch PWNED\n",
        "\r\n",
        "--",
        "=",
        "a=b",
    ];

    #[test]
    fn hostile_values_print_verbatim_in_every_context_and_never_run() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[Case] = &[
            ("printf '%s' {{ vars.v }}", |v| v.to_string()),
            ("printf '%s' pre{{ vars.v }}post", |v| format!("pre{v}post")),
            ("printf '%s' \"got {{ vars.v }}\"", |v| format!("got {v}")),
            ("printf '%s' 'in {{ vars.v }} single'", |v| format!("in {v} single")),
            ("printf '%s' \"a\"{{ vars.v }}'b'", |v| format!("a{v}b")),
            ("printf '%s|' {{ vars.v }} \"{{ vars.v }}\" '{{ vars.v }}'", |v| format!("{v}|{v}|{v}|")),
            ("printf '%s' {{ vars.v }}{{ vars.v }}", |v| format!("{v}{v}")),
            ("printf '%s' \\\"{{ vars.v }}\\\"", |v| format!("\"{v}\"")),
            ("printf '%s' \"\\\\\"{{ vars.v }}", |v| format!("\\{v}")),
            ("x={{ vars.v }}; printf '%s' \"$x\"", |v| v.to_string()),
            ("x=\"[{{ vars.v }}]\"; printf '%s' \"$x\"", |v| format!("[{v}]")),
            ("printf '%s' \"$(printf '%s' {{ vars.v }})\"", |v| v.trim_end_matches('\n').to_string()),
            ("printf '%s' \"$(printf '%s' \"in {{ vars.v }}\")\"", |v| {
                format!("in {v}").trim_end_matches('\n').into()
            }),
            ("printf '%s' \"<$(printf '%s' \"$(printf '%s' '{{ vars.v }}')\")>\"", |v| {
                format!("<{}>", v.trim_end_matches('\n'))
            }),
            ("(printf '%s' {{ vars.v }})", |v| v.to_string()),
            ("if true; then printf '%s' {{ vars.v }}; fi", |v| v.to_string()),
            ("case {{ vars.v }} in *) printf '%s' {{ vars.v }};; esac", |v| v.to_string()),
            ("for x in {{ vars.v }}; do printf '%s' \"$x\"; done", |v| v.to_string()),
            ("printf '%s' ok # {{ vars.v }} it's a comment\nprintf '%s' \" {{ vars.v }}\"", |v| {
                format!("ok {v}")
            }),
            ("printf '%s' \"${HOME:+home}\"{{ vars.v }}", |v| format!("home{v}")),
            ("cat <<'EOF'\nit's $(body\nEOF\nprintf '%s' {{ vars.v }}", |v| format!("it's $(body\n{v}")),
            ("cat <<-EOF\n\t$HOME\n\tEOF\nprintf '%s' \"{{ vars.v }}\"", |v| {
                format!("/home-of-the-runner\n{v}")
            }),
            ("printf '%s' {{ vars.v }} > out; cat out", |v| v.to_string()),
            ("printf '%s' {{ vars.v }}>out&&cat out", |v| v.to_string()),
            ("sh -c 'printf \"%s\" \"$1\"' sh {{ vars.v }}", |v| v.to_string()),
            ("printf '%s' `echo hi`{{ vars.v }}", |v| format!("hi{v}")),
            ("printf '%s' \\\n{{ vars.v }}", |v| v.to_string()),
            ("printf '%s' $(( 1 + 2 )){{ vars.v }}", |v| format!("3{v}")),
            ("x='it''s'; printf '%s' \"$x\" {{ vars.v }}", |v| format!("its{v}")),
            // A backslash-newline is removed before anything else is read, outside single quotes.
            ("printf '%s' \"$\\\n(printf '%s' {{ vars.v }})\"", |v| v.trim_end_matches('\n').to_string()),
            ("printf '%s' \"<\\\n{{ vars.v }}>\"", |v| format!("<{v}>")),
            ("cat <\\\n<EOF\n$HOME\nEOF\nprintf '%s' {{ vars.v }}", |v| format!("/home-of-the-runner\n{v}")),
            ("printf '%s' a # a comment \\\nprintf '%s' {{ vars.v }}", |v| format!("a{v}")),
            ("printf '%s' 'a\\\n'{{ vars.v }}", |v| format!("a\\\n{v}")),
        ];
        // One shell per value: the rendered cases one after another, separated by a record
        // separator (which no hostile value contains).
        for value in HOSTILE {
            let values = with_var(value);
            let rendered: Vec<String> = cases
                .iter()
                .map(|(command, _)| {
                    render_shell(command, &values).unwrap_or_else(|e| panic!("{command:?}: {e}"))
                })
                .collect();
            let printed = run_in(dir.path(), &rendered.join("\nprintf '\\036'\n"), &[]);
            let printed: Vec<&str> = printed.split('\u{1e}').collect();
            assert_eq!(printed.len(), cases.len(), "value {value:?}: {printed:?}");
            for (((command, expected), rendered), printed) in cases.iter().zip(&rendered).zip(printed) {
                assert_eq!(
                    printed,
                    expected(value),
                    "value {value:?} in {command:?}, rendered as {rendered:?}"
                );
            }
        }
    }

    #[test]
    fn a_bare_value_is_exactly_one_word() {
        let dir = tempfile::tempdir().unwrap();
        for value in HOSTILE {
            let rendered = render_shell("set -- {{ vars.v }}; printf '%s' $#", &with_var(value)).unwrap();
            assert_eq!(run_in(dir.path(), &rendered, &[]), "1", "{value:?}");
        }
    }

    #[test]
    fn echo_in_double_quotes_prints_a_step_output_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        // dash's `echo` interprets backslashes itself, so these are the hostile values without them.
        for output in HOSTILE.iter().filter(|v| !v.contains('\\')) {
            let mut values = Values::new();
            values.set_step("a", format!("{output}\n"), Some(0));
            let rendered = render_shell("echo \"got {{ steps.a.output }}\"", &values).unwrap();
            assert_eq!(run_in(dir.path(), &rendered, &[]), format!("got {output}\n"), "{output:?}");
        }
        let mut values = Values::new();
        values.set_step("a", "x; touch PWNED\n", Some(0));
        let rendered = render_shell("echo \"got {{ steps.a.output }}\"", &values).unwrap();
        assert_eq!(run_in(dir.path(), &rendered, &[]), "got x; touch PWNED\n");
    }

    /// A small deterministic generator (xorshift) of strings rich in shell syntax.
    struct Strings(u64);

    impl Strings {
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn string(&mut self) -> String {
            const ALPHABET: &[char] = &[
                '\'', '"', '\\', '$', '`', '(', ')', '{', '}', '[', ']', '*', '?', '!', '#', ';', '&', '|',
                '<', '>', ' ', '\t', '\n', '\r', '~', '-', '=', '%', '^', '@', ',', '.', ':', '/', 'a', 'Z',
                '0', 'é', '中', '🚀', '\u{1b}', '\u{7f}', '\u{a0}',
            ];
            let len = (self.next_u64() % 24) as usize;
            (0..len).map(|_| ALPHABET[(self.next_u64() % ALPHABET.len() as u64) as usize]).collect()
        }
    }

    #[test]
    fn random_strings_come_back_exactly_in_every_context() {
        let dir = tempfile::tempdir().unwrap();
        let mut strings_gen = Strings(0x9e37_79b9_7f4a_7c15);
        for _batch in 0..12 {
            let strings: Vec<String> = (0..40).map(|_| strings_gen.string()).collect();
            let mut values = Values::new();
            for (i, s) in strings.iter().enumerate() {
                values.set_var(format!("v{i}"), s.as_str());
            }
            let forms: [fn(usize) -> String; 4] = [
                |i| format!("{{{{ vars.v{i} }}}}"),
                |i| format!("\"{{{{ vars.v{i} }}}}\""),
                |i| format!("'{{{{ vars.v{i} }}}}'"),
                |i| format!("\"<\"{{{{ vars.v{i} }}}}'>'"),
            ];
            for (f, form) in forms.iter().enumerate() {
                let args: Vec<String> = (0..strings.len()).map(form).collect();
                let command = format!("printf '%s\\0' {}", args.join(" "));
                let rendered = render_shell(&command, &values).unwrap();
                let printed = run_in(dir.path(), &rendered, &[]);
                let expected: String = strings
                    .iter()
                    .map(|s| if f == 3 { format!("<{s}>\0") } else { format!("{s}\0") })
                    .collect();
                assert_eq!(printed, expected, "rendered as {rendered:?}");
            }
        }
    }

    /// Random commands built from shell syntax, with templates dropped in anywhere and values
    /// that try to break out of every quoting: whatever the shell makes of the command (most are
    /// syntax errors), a value is either refused or never runs. `GREENLIGHT_FUZZ_ITERATIONS` runs
    /// more of them, `GREENLIGHT_FUZZ_SEED` others.
    #[test]
    fn random_commands_never_run_a_value() {
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            " ", " ", "printf %s ", "x", "=", "'", "\"", "\\", "$", "(", ")", "$(", "`", "#", "\n", ";", "|",
            "&&", "<<E", "<<'E'", "<<-E", "E", "\tE", "${", "}", "{", "[", "]", "case ", " in ", "a)", ";;",
            " esac", "<", ">", "'a'", "\"b\"", "$((", "))", "\\\n", " -c ", " sh -c", " eval ", "$'", "$\"", "~",
            "a[", "=(", "!", "\\'", "\\\"", "$[", "((", " [[ ", " let ", "\"$(", " bash -o x -c ", "&", "<<<",
            "declare -a ", "a+=(", "function f ", "{ ", " }", "if ", "then ", "fi", "for i in ", "do ",
            "done", "<(", ">(", "|&", ";&", " coproc ", "[[ x =~ ", "$(<", "2>&1", "\r", ">&", "<&", "&>",
            "1", "]]", " time -p ", " command ", "@(", "shopt -s extglob\n", "{{ vars.v }}", "{{ vars.v }}",
            "{{ vars.v }}",
        ];
        const PAYLOADS: &[&str] = &[
            "'\"$(touch PWNED)\"'",
            "x'\n touch PWNED\n'",
            "\"`touch PWNED`\"",
            "\\'\\\"; touch PWNED; #",
            "\nE\ntouch PWNED\nE\n",
            ")\ntouch PWNED\n(",
            "a[$(touch PWNED)]",
            "}; touch PWNED; {",
            "'; touch PWNED; '",
            "\"; touch PWNED; \"",
        ];
        let iterations =
            std::env::var("GREENLIGHT_FUZZ_ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(150);
        let seed = std::env::var("GREENLIGHT_FUZZ_SEED").ok().and_then(|n| n.parse().ok());
        let mut random = Strings(seed.unwrap_or(0x2545_f491_4f6c_dd1d));
        let (mut rendered_count, mut refused) = (0, 0);
        for _ in 0..iterations {
            let len = 2 + (random.next_u64() % 14) as usize;
            let mut command: String =
                (0..len).map(|_| PIECES[(random.next_u64() % PIECES.len() as u64) as usize]).collect();
            if !command.contains("{{") {
                command.push_str("{{ vars.v }}");
            }
            let payload = PAYLOADS[(random.next_u64() % PAYLOADS.len() as u64) as usize];
            let Ok(rendered) = render_shell(&command, &with_var(payload)) else {
                refused += 1;
                continue;
            };
            rendered_count += 1;
            for shell in shells() {
                // A fresh directory each time: a command may leave a file that a later one runs.
                let dir = tempfile::tempdir().unwrap();
                let status = Command::new("timeout")
                    .arg("5")
                    .args(&shell)
                    .arg("-c")
                    .arg(&rendered)
                    .current_dir(dir.path())
                    .output()
                    .unwrap();
                assert!(
                    !dir.path().join("PWNED").exists(),
                    "{shell:?} ran the value {payload:?} in {command:?}, rendered as {rendered:?}: {status:?}"
                );
            }
        }
        assert!(rendered_count > iterations / 4, "only {rendered_count} rendered, {refused} refused");
    }

    fn refusal(command: &str) -> String {
        let error = render_shell(command, &with_var("x")).expect_err(command);
        assert_eq!(check_shell(command).expect_err(command), error, "check_shell agrees on {command:?}");
        error.message
    }

    #[test]
    fn contexts_that_cannot_be_escaped_soundly_are_refused_with_what_to_do() {
        let cases: &[(&str, &str)] = &[
            ("echo \\{{ vars.v }}", "after a backslash"),
            ("echo \"\\{{ vars.v }}\"", "after a backslash"),
            ("echo ${{ vars.v }}", "right after `$`"),
            ("echo $\\\n{{ vars.v }}", "right after `$`"),
            ("echo \"$\\\n{ X:-{{ vars.v }}}\"", "parameter expansion"),
            ("echo \"${{ vars.v }}\"", "\"$GREENLIGHT_VAR_V\""),
            ("echo `echo {{ vars.v }}`", "use `$( ... )`"),
            ("echo \"`echo {{ vars.v }}`\"", "backquotes"),
            ("echo $'a{{ vars.v }}'", "`$'...'`"),
            ("echo $\"a{{ vars.v }}\"", "translated string"),
            ("echo ${X:-{{ vars.v }}}", "parameter expansion"),
            ("echo \"${X:-{{ vars.v }}}\"", "parameter expansion"),
            ("echo $(( 1 + {{ vars.v }} ))", "arithmetic"),
            ("(( x = {{ vars.v }} ))", "arithmetic"),
            ("cat <<EOF\n{{ vars.v }}\nEOF", "here-document"),
            ("cat <<'EOF'\na {{ vars.v }}\nEOF", "here-document"),
            ("cat <<{{ vars.v }}\nx\n", "delimiter"),
            ("eval {{ vars.v }}", "`eval`"),
            ("eval \"echo {{ vars.v }}\"", "`eval`"),
            ("X=1 command eval \"$(echo {{ vars.v }})\"", "`eval`"),
            ("sh -c \"echo {{ vars.v }}\"", "`sh -c`"),
            ("bash -euc 'echo {{ vars.v }}'", "`bash -c`"),
            ("bash -o pipefail -c \"echo {{ vars.v }}\"", "`bash -c`"),
            ("sudo -u me /bin/sh -c \"$(echo {{ vars.v }})\"", "`sh -c`"),
            ("find . -exec sh -c {{ vars.v }} \\;", "`sh -c`"),
            ("busybox sh -c \"echo {{ vars.v }}\"", "`sh -c`"),
            ("su - me -c \"echo {{ vars.v }}\"", "`su -c`"),
            ("\"bash\" --rcfile x -c \"echo {{ vars.v }}\"", "`bash -c`"),
            ("'alias' e=echo\ne {{ vars.v }}", "`alias`"),
            ("eval x # {{ vars.v }}\n[[ 1 -eq {{ vars.v }} ]]", "operand of `[[`"),
            ("[[ \"{{ vars.v }}\" == x ]]", "operand of `[[`"),
            ("let \"x = {{ vars.v }}\"", "operand of `let`"),
            ("if ! coproc let {{ vars.v }}; then :; fi", "operand of `let`"),
            ("eval &> log {{ vars.v }}", "`eval`"),
            ("[[ a && ( 1 -eq {{ vars.v }} ) ]]", "operand of `[[`"),
            ("time -p eval {{ vars.v }}", "`eval`"),
            ("$maybe let {{ vars.v }}", "operand of `let`"),
            ("coproc eval <(){{ vars.v }}", "`eval`"),
            ("echo &> log <<E eval {{ vars.v }}\nE", "`eval`"),
            ("[[ a && eval x ]] {{ vars.v }}", "operand of `[[`"),
            ("[[ a '<<-E'\n{{ vars.v }}", "operand of `[[`"),
            ("[[ a <<-E\n{{ vars.v }}\nE", "here-document"),
            ("[[ a ]]&&let {{ vars.v }}", "operand of `let`"),
            ("\"$([[ a ) ]]; echo {{ vars.v }})\"", "`)` inside `[[ ]]`"),
            ("arr[{{ vars.v }}]=1", "array subscript"),
            ("local arr[\"{{ vars.v }}\"]=1", "array subscript"),
            ("echo $[1]; echo {{ vars.v }}", "`$[ ]`"),
            ("a=( ; )\necho {{ vars.v }}", "array assignment"),
            ("[[ a && a+=( ;; then {{ vars.v }}", "array assignment"),
            ("echo >&{{ vars.v }}", "target of `>&`"),
            ("echo 1>& \"$(echo {{ vars.v }})\"", "target of `>&`"),
            ("echo >&1\\\">(true){{ vars.v }}", "target of `>&`"),
            ("shopt -s extglob\neval a@(b){{ vars.v }}", "`eval`"),
            ("f() { eval \"$1\"; }; eval {{ vars.v }}", "`eval`"),
            ("x=$(case a in a) echo;; esac); echo {{ vars.v }}", "`case` inside"),
            ("alias e=echo\ne {{ vars.v }}", "`alias`"),
            ("echo $'it\\'s'\necho {{ vars.v }}", "backslash inside `$'...'`"),
            ("x=$(cat <<EOF)\nEOF\necho {{ vars.v }}", "here-document"),
            ("cat <<\"E$(\\\"\"; echo \"{{ vars.v }}\"", "here-document delimiter"),
            ("cat <<EOF\na\\\nEOF\nEOF\necho {{ vars.v }}", "backslash"),
            ("echo `a\nb`{{ vars.v }}", "backquotes spanning lines"),
        ];
        for (command, needle) in cases {
            let message = refusal(command);
            assert!(message.contains(needle), "{command:?}: {message}");
            assert!(message.starts_with("`{{ vars.v }}`"), "{command:?}: {message}");
        }
        let message = refusal("echo ok\necho \"${x:-{a}}\" {{ vars.v }}");
        assert!(message.contains("line 2, column 12"), "{message}");
    }

    #[test]
    fn refusals_name_the_environment_variable_to_use_instead() {
        let message = refusal("cat <<EOF\n{{ vars.v }}\nEOF");
        assert!(message.contains("\"$GREENLIGHT_VAR_V\""), "{message}");
        let message = refusal("sh -c \"echo {{ vars.v }}\"");
        assert!(message.contains("sh -c 'echo \"$1\"' sh {{ vars.v }}"), "{message}");
    }

    #[test]
    fn refused_constructs_do_not_affect_templates_before_them() {
        let dir = tempfile::tempdir().unwrap();
        let values = with_var("$(touch PWNED)");
        let rendered = render_shell("printf '%s' {{ vars.v }}\nalias x=y", &values).unwrap();
        assert_eq!(run_in(dir.path(), &rendered, &[]), "$(touch PWNED)");
        let rendered =
            render_shell("cat <<EOF\n$HOME\nEOF\nprintf '%s' \"{{ vars.v }}\" `echo`", &values).unwrap();
        assert_eq!(run_in(dir.path(), &rendered, &[]), "/home-of-the-runner\n$(touch PWNED)");
    }

    #[test]
    fn shells_run_with_arguments_and_other_commands_are_not_refused() {
        for command in [
            "sh -c 'echo \"$1\"' sh {{ vars.v }}",
            "sh script.sh {{ vars.v }}",
            "bash -c 'exit 0'; echo {{ vars.v }}",
            "echo evaluate {{ vars.v }}",
            "git commit -m {{ vars.v }}",
            "case {{ vars.v }} in a) echo a;; esac",
            "echo arr[{{ vars.v }}] x=a[{{ vars.v }}] \"$(eval 'echo' # {{ vars.v }}\n)\"",
            "[ {{ vars.v }} -eq 1 ]",
            "[[ a ]] && echo {{ vars.v }}",
            "[[ a ]]||echo {{ vars.v }}",
            "echo >& 2 {{ vars.v }} >{{ vars.v }} 2>>{{ vars.v }}",
        ] {
            render_shell(command, &with_var("x")).unwrap_or_else(|e| panic!("{command:?}: {e}"));
        }
    }

    #[test]
    fn a_value_in_a_comment_stays_in_the_comment() {
        let dir = tempfile::tempdir().unwrap();
        let values = with_var("x\ntouch PWNED\n'");
        let rendered = render_shell("printf ok # {{ vars.v }}\nprintf '%s' done", &values).unwrap();
        assert_eq!(run_in(dir.path(), &rendered, &[]), "okdone");
    }

    #[test]
    fn outputs_lose_one_trailing_line_ending() {
        assert_eq!(trim_output("hi\n"), "hi");
        assert_eq!(trim_output("hi\r\n"), "hi");
        assert_eq!(trim_output("hi\n\n"), "hi\n");
        assert_eq!(trim_output("hi"), "hi");
        assert_eq!(trim_output("\n"), "");
        assert_eq!(trim_output("hi\r"), "hi\r");
        let mut values = Values::new();
        values.set_step("a", "two\nlines\n", Some(3));
        let t = template::parse("[{{ steps.a.output }}] exited {{ steps.a.exit_code }}").unwrap();
        assert_eq!(render_text(&t, &values).unwrap(), "[two\nlines] exited 3");
    }

    #[test]
    fn json_fields_of_an_output_render_like_jq_raw() {
        let mut values = Values::new();
        values.set_step(
            "plan",
            concat!(
                r#"{"title": "it's \"done\"", "n": 3, "ok": true, "none": null,"#,
                "\n",
                r#" "items": [{"name": "a b"}, {"name": "c"}], "obj": {"k": [1]}}"#,
                "\n"
            ),
            Some(0),
        );
        let render = |text: &str| render_text(&template::parse(text).unwrap(), &values);
        assert_eq!(render("{{ steps.plan.output.title }}").unwrap(), "it's \"done\"");
        assert_eq!(render("{{ steps.plan.output.n }}|{{ steps.plan.output.ok }}").unwrap(), "3|true");
        assert_eq!(render("{{ steps.plan.output.none }}").unwrap(), "null");
        assert_eq!(render("{{ steps.plan.output.items.1.name }}").unwrap(), "c");
        assert_eq!(render("{{ steps.plan.output.obj }}").unwrap(), "{\"k\":[1]}");

        let error = render("x {{ steps.plan.output.missing }}").unwrap_err();
        assert_eq!(error.offset, Some(2));
        assert!(error.message.contains("has no field `missing`"), "{}", error.message);
        assert!(error.message.contains("step `plan`"), "{}", error.message);
        let message = render("{{ steps.plan.output.items.5 }}").unwrap_err().message;
        assert!(message.contains("has 2 elements"), "{message}");
        let message = render("{{ steps.plan.output.items.x }}").unwrap_err().message;
        assert!(message.contains("`items` of step `plan` is an array"), "{message}");
        let message = render("{{ steps.plan.output.n.x }}").unwrap_err().message;
        assert!(message.contains("is a number"), "{message}");

        let mut values = values.clone();
        values.set_step("text", "not json\n", Some(0));
        let t = template::parse("{{ steps.text.output.a.b }}").unwrap();
        let message = render_text(&t, &values).unwrap_err().message;
        assert!(
            message.contains("output of step `text` is not JSON") && message.contains("`a.b`"),
            "{message}"
        );
    }

    #[test]
    fn a_json_field_is_escaped_for_the_shell_like_any_value() {
        let dir = tempfile::tempdir().unwrap();
        let mut values = Values::new();
        values.set_step("a", r#"{"cmd": "$(touch PWNED)'\"; touch PWNED"}"#, Some(0));
        let rendered = render_shell("printf '%s' \"{{ steps.a.output.cmd }}\"", &values).unwrap();
        assert_eq!(run_in(dir.path(), &rendered, &[]), "$(touch PWNED)'\"; touch PWNED");
    }

    #[test]
    fn missing_values_and_nul_bytes_are_errors() {
        let values = with_var("a\0b");
        let message = render_shell("echo {{ vars.v }}", &values).unwrap_err().message;
        assert!(message.contains("NUL"), "{message}");
        let t = template::parse("{{ vars.v }}").unwrap();
        assert!(render_text(&t, &values).unwrap_err().message.contains("NUL"));
        assert!(exports(t.references(), &values).unwrap_err().message.contains("NUL"));

        let error = render_shell("echo ok {{ vars.nope }}", &values).unwrap_err();
        assert_eq!(error.offset, Some(8));
        assert!(error.message.contains("--var nope=VALUE"), "{}", error.message);
        let message = render_shell("echo {{ steps.later.output }}", &values).unwrap_err().message;
        assert!(message.contains("step `later` has not finished"), "{message}");
        let mut values = Values::new();
        values.set_step("killed", "", None);
        let message = render_shell("echo {{ steps.killed.exit_code }}", &values).unwrap_err().message;
        assert!(message.contains("has no exit code"), "{message}");
    }

    #[test]
    fn template_syntax_errors_carry_their_offset() {
        let error = render_shell("echo {{ env.HOME }}", &Values::new()).unwrap_err();
        assert_eq!(error.offset, Some(8));
        assert!(error.message.contains("unknown root `env`"), "{}", error.message);
    }

    #[test]
    fn oversized_commands_are_refused_before_spawning() {
        let values = with_var(&"x".repeat(MAX_ARG_BYTES));
        let message = render_shell("echo {{ vars.v }}", &values).unwrap_err().message;
        assert!(message.contains("bytes, more than"), "{message}");
        let t = template::parse("{{ vars.v }}").unwrap();
        assert!(exports(t.references(), &values).unwrap_err().message.contains("too large"));
    }

    #[test]
    fn exports_carry_the_referenced_values_under_stable_names() {
        let mut values = Values::new();
        values.set_var("feature-name", "x; touch PWNED");
        values.set_var("unused", "no");
        values.set_step("unit-tests", "{\"passed\": 3}\n", Some(1));
        values.set_step("b", "out\n", Some(0));
        let t = template::parse(
            "{{ vars.feature-name }} {{ steps.unit-tests.output.passed }} {{ steps.unit-tests.exit_code }} \
             {{ steps.b.output }} {{ steps.b.output }}",
        )
        .unwrap();
        let env = exports(t.references(), &values).unwrap();
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        assert_eq!(
            env,
            pairs(&[
                ("GREENLIGHT_STEP_B_OUTPUT", "out"),
                ("GREENLIGHT_STEP_UNIT_TESTS_EXIT_CODE", "1"),
                ("GREENLIGHT_STEP_UNIT_TESTS_OUTPUT", "{\"passed\": 3}"),
                ("GREENLIGHT_VAR_FEATURE_NAME", "x; touch PWNED"),
            ])
        );
        let dir = tempfile::tempdir().unwrap();
        let printed = run_in(dir.path(), "printf '%s' \"$GREENLIGHT_VAR_FEATURE_NAME\"", &env);
        assert_eq!(printed, "x; touch PWNED");
    }

    #[test]
    fn exports_that_clash_are_an_error() {
        let mut values = Values::new();
        values.set_var("a-b", "1");
        values.set_var("a_b", "2");
        let t = template::parse("{{ vars.a-b }} {{ vars.a_b }}").unwrap();
        let message = exports(t.references(), &values).unwrap_err().message;
        assert!(message.contains("both be exported as GREENLIGHT_VAR_A_B"), "{message}");
        values.set_var("a_b", "1");
        assert_eq!(
            exports(t.references(), &values).unwrap(),
            vec![("GREENLIGHT_VAR_A_B".into(), "1".into())]
        );
    }
}
