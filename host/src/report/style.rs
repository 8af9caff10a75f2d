//! A little color for a terminal, and none anywhere else or when `NO_COLOR` is set.

use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paint {
    pub(crate) enabled: bool,
}

impl Paint {
    pub(crate) const NONE: Paint = Paint { enabled: false };

    /// Color when stderr is a terminal and `NO_COLOR` is unset or empty (<https://no-color.org>).
    pub(crate) fn stderr() -> Paint {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Paint { enabled: !no_color && std::io::stderr().is_terminal() }
    }

    pub(crate) fn green(self, text: &str) -> String {
        self.sgr("32", text)
    }

    pub(crate) fn red(self, text: &str) -> String {
        self.sgr("31", text)
    }

    pub(crate) fn yellow(self, text: &str) -> String {
        self.sgr("33", text)
    }

    pub(crate) fn cyan(self, text: &str) -> String {
        self.sgr("36", text)
    }

    pub(crate) fn dim(self, text: &str) -> String {
        self.sgr("2", text)
    }

    pub(crate) fn bold(self, text: &str) -> String {
        self.sgr("1", text)
    }

    fn sgr(self, code: &str, text: &str) -> String {
        if self.enabled && !text.is_empty() { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}
