//! `--json`: every event as one JSON object on its own line, flushed as it happens, for scripts.
//! Strings are escaped by serde, so untrusted text cannot break a line or the terminal.

use std::io::{self, Write};
use std::sync::Mutex;

use super::lock;
use crate::engine::event::{Event, Observer};

pub struct Json<W = io::Stdout> {
    out: Mutex<W>,
}

impl Json {
    pub fn stdout() -> Json {
        Json::new(io::stdout())
    }
}

impl<W: Write + Send> Json<W> {
    pub fn new(out: W) -> Self {
        Json { out: Mutex::new(out) }
    }

    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl<W: Write + Send> Observer for Json<W> {
    fn event(&self, event: &Event) {
        let Ok(line) = serde_json::to_string(event) else { return };
        let mut out = lock(&self.out);
        // A reader that went away (`| head`) must not stop the run: write errors are dropped.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_per_line() {
        let json = Json::new(Vec::new());
        json.event(&Event::StepSkipped { step: "a\nb".into(), at: 5, reason: "needs `x`".into() });
        json.event(&Event::StepSkipped { step: "c".into(), at: 6, reason: "cancelled".into() });
        let out = String::from_utf8(json.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], r#"{"event":"step_skipped","step":"a\nb","at":5,"reason":"needs `x`"}"#);
    }
}
