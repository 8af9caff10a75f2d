//! The host's own form of a verdict: what the CLI prints, the engine records, and a repair agent
//! reads. Converted from the guest's WIT verdict and checked on the way in.

use serde::{Deserialize, Serialize};

use super::bindings::types as wit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub path: Option<String>,
    pub line: Option<u32>,
    pub message: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub summary: String,
    pub findings: Vec<Finding>,
    pub evidence: String,
}

impl Verdict {
    /// An `error` verdict produced by the host (the gate could not run or misbehaved).
    pub fn host_error(summary: impl Into<String>, evidence: impl Into<String>) -> Verdict {
        Verdict {
            outcome: Outcome::Error,
            summary: summary.into(),
            findings: Vec::new(),
            evidence: evidence.into(),
        }
    }

    /// Take the guest's verdict if it is within `max_bytes`; otherwise an `error` verdict.
    pub(crate) fn from_guest(v: wit::Verdict, max_bytes: usize) -> Verdict {
        let size = v.summary.len()
            + v.evidence.len()
            + v.findings
                .iter()
                .map(|f| f.message.len() + f.path.as_ref().map_or(0, String::len) + 8)
                .sum::<usize>();
        if size > max_bytes {
            return Verdict::host_error(
                format!(
                    "the gate returned a verdict of {size} bytes, over the {max_bytes}-byte verdict limit"
                ),
                "A verdict is meant to be read: put the essentials in the summary and findings, \
                 and only the relevant part of any output in the evidence.",
            );
        }
        Verdict {
            outcome: match v.outcome {
                wit::Outcome::Pass => Outcome::Pass,
                wit::Outcome::Fail => Outcome::Fail,
                wit::Outcome::Error => Outcome::Error,
            },
            summary: one_line(&v.summary),
            findings: v
                .findings
                .into_iter()
                .map(|f| Finding {
                    path: f.path,
                    line: f.line,
                    message: f.message,
                    severity: match f.severity {
                        wit::Severity::Info => Severity::Info,
                        wit::Severity::Warning => Severity::Warning,
                        wit::Severity::Error => Severity::Error,
                    },
                })
                .collect(),
            evidence: v.evidence,
        }
    }
}

/// A summary is one line: the first non-empty one, trimmed.
fn one_line(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("(no summary)");
    line.to_string()
}
