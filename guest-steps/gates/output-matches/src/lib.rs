//! `builtin:output-matches`: passes when the verified step's output matches the given regex
//! (Rust `regex` syntax): anywhere in the output, or in its first or last non-empty line
//! (trimmed). `^` and `$` anchor the whole text searched; `(?m)` makes them anchor each line.
use greenlight_gate::{Finding, Gate, GateError, GateResult, Input, StepResult, Verdict};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::fmt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(deserialize_with = "string_or_list")]
    pattern: Vec<String>,
    #[serde(default, rename = "match")]
    mode: Mode,
    #[serde(default = "yes")]
    case_sensitive: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    #[default]
    Anywhere,
    FirstLine,
    LastLine,
}

/// Accepts `"^ok$"` as well as `["^ok$", "0 failed"]`.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a regex or a list of regexes")
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

/// Lines of output quoted in the evidence when the gate fails, and their most bytes.
const TAIL_LINES: usize = 40;
const TAIL_BYTES: usize = 8 * 1024;
/// Bounds on a compiled regex, so a pattern cannot make the gate use much memory.
const REGEX_SIZE_LIMIT: usize = 4 * 1024 * 1024;

/// `s` quoted, shortened to a readable length, on one line.
fn quote(s: &str) -> String {
    const MAX: usize = 120;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

fn first_line(output: &str) -> Option<&str> {
    output.lines().map(str::trim).find(|l| !l.is_empty())
}

fn last_line(output: &str) -> Option<&str> {
    output.lines().rev().map(str::trim).find(|l| !l.is_empty())
}

/// The end of the output, for a person (or a repair agent) to see what the step printed.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let mut text = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    if text.len() > TAIL_BYTES {
        let mut cut = text.len() - TAIL_BYTES;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = format!("...{}", &text[cut..]);
    }
    text
}

fn describe_step(step: &StepResult) -> String {
    let code = match step.exit_code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".to_string(),
    };
    let truncated = if step.output_truncated { ", truncated by the host" } else { "" };
    format!(
        "step: {code}; output: {} lines, {} bytes{truncated}",
        step.output.lines().count(),
        step.output.len()
    )
}

/// The regex, or an error verdict that quotes the regex error: its gist in the one-line summary,
/// the whole (multi-line, with a caret under the problem) in the evidence.
fn compile(pattern: &str, case_sensitive: bool) -> Result<Regex, Verdict> {
    RegexBuilder::new(pattern).case_insensitive(!case_sensitive).size_limit(REGEX_SIZE_LIMIT).build().map_err(
        |e| {
            let full = e.to_string();
            let gist = full
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error:"))
                .map(str::trim)
                .map(str::to_string)
                .unwrap_or_else(|| full.split_whitespace().collect::<Vec<_>>().join(" "));
            Verdict::error(format!("invalid regex {}: {gist}", quote(pattern)))
                .with_evidence(format!("pattern: {pattern}\n{full}"))
        },
    )
}

struct OutputMatches;

impl Gate for OutputMatches {
    fn verify(input: Input) -> GateResult {
        let params: Params = input.params()?;
        let step = input.step()?;
        let mode = params.mode;
        if params.pattern.is_empty() {
            return Err(GateError::new("`pattern` is an empty list; give at least one regex"));
        }
        let mut regexes = Vec::new();
        for p in &params.pattern {
            if p.is_empty() {
                return Err(GateError::new("`pattern` is empty, which matches any output"));
            }
            match compile(p, params.case_sensitive) {
                Ok(re) => regexes.push((p, re)),
                Err(verdict) => return Ok(verdict),
            }
        }

        let first = first_line(&step.output);
        let last = last_line(&step.output);
        let ignoring_case = if params.case_sensitive { "" } else { " (ignoring case)" };

        let mut missing = Vec::new();
        let mut findings = Vec::new();
        for (p, re) in &regexes {
            let problem = match mode {
                Mode::Anywhere => (!re.is_match(&step.output))
                    .then(|| format!("the output does not match {}{ignoring_case}", quote(p))),
                Mode::FirstLine | Mode::LastLine => {
                    let (which, line) =
                        if mode == Mode::FirstLine { ("first", first) } else { ("last", last) };
                    match line {
                        Some(l) if re.is_match(l) => None,
                        Some(l) => Some(format!(
                            "the {which} non-empty line of the output, {}, does not match {}{ignoring_case}",
                            quote(l),
                            quote(p)
                        )),
                        None => {
                            Some(format!("the output has no non-empty line to match {} against", quote(p)))
                        }
                    }
                }
            };
            if let Some(message) = problem {
                findings.push(Finding::error(message));
                missing.push(p.as_str());
            }
        }
        if step.output_truncated {
            findings.push(Finding::warning(
                "the step's output was truncated by the host; the gate saw only part of it",
            ));
        }

        let n = regexes.len();
        if missing.is_empty() {
            let what = match (n, mode) {
                (1, Mode::Anywhere) => format!("the output matches {}", quote(&params.pattern[0])),
                (1, Mode::FirstLine) => format!("the first line matches {}", quote(&params.pattern[0])),
                (1, Mode::LastLine) => format!("the last line matches {}", quote(&params.pattern[0])),
                (n, _) => format!("the output matches all {n} patterns"),
            };
            return Ok(Verdict::pass(format!("{what}{ignoring_case}"))
                .with_findings(findings)
                .with_evidence(describe_step(step)));
        }

        let summary = if n == 1 {
            findings[0].message.clone()
        } else {
            let names: Vec<String> = missing.iter().map(|p| quote(p)).collect();
            format!("{} of {n} patterns do not match: {}", missing.len(), names.join(", "))
        };
        let mut evidence = describe_step(step);
        if mode == Mode::FirstLine {
            evidence.push_str(&format!("\nfirst non-empty line: {}", first.map_or("(none)".into(), quote)));
        }
        if step.output.trim().is_empty() {
            evidence.push_str("\n(the output is empty)");
        } else {
            evidence.push_str(&format!("\nlast {TAIL_LINES} lines of the output:\n{}", tail(&step.output)));
        }
        Ok(Verdict::fail(summary).with_findings(findings).with_evidence(evidence))
    }
}

greenlight_gate::export_gate!(OutputMatches);
