//! `builtin:output-contains`: passes when the verified step's output contains the given text:
//! anywhere (`substring`), as some whole line (`line`), or as its first or last non-empty line
//! (`first-line`, `last-line`). Lines are trimmed before they are compared, and so is the text.
//!
//! `first-line` is how a review verdict is checked: with `text: "REVIEW_VERDICT: CLEAN"`, an
//! output starting `REVIEW_VERDICT: NOT CLEAN` never passes.
use greenlight_gate::{Finding, Gate, GateError, GateResult, Input, StepResult, Verdict};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(deserialize_with = "string_or_list")]
    text: Vec<String>,
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
    Substring,
    Line,
    FirstLine,
    LastLine,
}

/// Accepts `"DONE"` as well as `["DONE", "0 failed"]`.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a list of strings")
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

struct OutputContains;

impl Gate for OutputContains {
    fn verify(input: Input) -> GateResult {
        let params: Params = input.params()?;
        let step = input.step()?;
        let mode = params.mode;
        if params.text.is_empty() {
            return Err(GateError::new("`text` is an empty list; give at least one text to look for"));
        }
        for t in &params.text {
            if mode == Mode::Substring && t.is_empty() {
                return Err(GateError::new("`text` is empty, which any output contains"));
            }
            if mode != Mode::Substring && t.trim().is_empty() {
                return Err(GateError::new(
                    "`text` is blank, and lines are compared trimmed, non-empty ones only",
                ));
            }
            if mode != Mode::Substring && t.trim().contains('\n') {
                return Err(GateError::new(format!(
                    "`text` {} spans several lines, so it can never equal one line; use \
                     `match: substring`",
                    quote(t)
                )));
            }
        }

        let fold =
            |s: &str| -> String { if params.case_sensitive { s.to_string() } else { s.to_lowercase() } };
        let output: Cow<str> = if params.case_sensitive {
            Cow::Borrowed(&step.output)
        } else {
            Cow::Owned(step.output.to_lowercase())
        };
        let first = first_line(&step.output);
        let last = last_line(&step.output);
        let ignoring_case = if params.case_sensitive { "" } else { " (ignoring case)" };

        let mut missing = Vec::new();
        let mut findings = Vec::new();
        for text in &params.text {
            let wanted = fold(if mode == Mode::Substring { text } else { text.trim() });
            let problem = match mode {
                Mode::Substring => (!output.contains(&wanted))
                    .then(|| format!("the output does not contain {}{ignoring_case}", quote(text))),
                Mode::Line => (!output.lines().any(|l| l.trim() == wanted))
                    .then(|| format!("no line of the output is {}{ignoring_case}", quote(text.trim()))),
                Mode::FirstLine | Mode::LastLine => {
                    let (which, line) =
                        if mode == Mode::FirstLine { ("first", first) } else { ("last", last) };
                    match line {
                        Some(l) if fold(l) == wanted => None,
                        Some(l) => Some(format!(
                            "the {which} non-empty line of the output is {}, not {}{ignoring_case}",
                            quote(l),
                            quote(text.trim())
                        )),
                        None => Some(format!(
                            "the output has no non-empty line; expected {} as its {which}",
                            quote(text.trim())
                        )),
                    }
                }
            };
            if let Some(message) = problem {
                findings.push(Finding::error(message));
                missing.push(text);
            }
        }
        if step.output_truncated {
            findings.push(Finding::warning(
                "the step's output was truncated by the host; the gate saw only part of it",
            ));
        }

        let n = params.text.len();
        if missing.is_empty() {
            let what = match (n, mode) {
                (1, Mode::Substring) => format!("the output contains {}", quote(&params.text[0])),
                (1, Mode::Line) => format!("a line of the output is {}", quote(params.text[0].trim())),
                (1, Mode::FirstLine) => format!("the first line is {}", quote(params.text[0].trim())),
                (1, Mode::LastLine) => format!("the last line is {}", quote(params.text[0].trim())),
                (n, _) => format!("the output has all {n} texts"),
            };
            return Ok(Verdict::pass(format!("{what}{ignoring_case}"))
                .with_findings(findings)
                .with_evidence(describe_step(step)));
        }

        let summary = if n == 1 {
            findings[0].message.clone()
        } else {
            let names: Vec<String> = missing.iter().map(|t| quote(t)).collect();
            format!("{} of {n} texts not found in the output: {}", missing.len(), names.join(", "))
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

greenlight_gate::export_gate!(OutputContains);
