//! What a parser extracts from a test runner's output, and small text helpers they share.

/// The test runners whose output the gate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Cargo,
    Nextest,
    Pytest,
    Node,
    Go,
    Vitest,
    Jest,
    Plain,
}

impl Format {
    /// In the order auto-detection prefers them when two summaries end on the same line.
    pub const ALL: [Format; 8] = [
        Format::Cargo,
        Format::Nextest,
        Format::Pytest,
        Format::Node,
        Format::Go,
        Format::Vitest,
        Format::Jest,
        Format::Plain,
    ];

    /// How the runner is named in summaries.
    pub fn label(self) -> &'static str {
        match self {
            Format::Cargo => "cargo test",
            Format::Nextest => "cargo nextest",
            Format::Pytest => "pytest",
            Format::Node => "node --test",
            Format::Go => "go test",
            Format::Vitest => "vitest",
            Format::Jest => "jest",
            Format::Plain => "plain summary",
        }
    }
}

/// One failing test (or package, or test file), as precisely as the output locates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub name: String,
    pub path: Option<String>,
    pub line: Option<u32>,
}

/// What one runner's output says.
#[derive(Debug, Clone)]
pub struct Report {
    pub format: Format,
    /// Tests that ran (passed, failed, and the like of pytest's xfailed); skipped ones excluded.
    pub ran: u64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// What was counted: "tests", or "packages" for `go test` without `-v`.
    pub unit: &'static str,
    pub failures: Vec<Failure>,
    /// The summary lines the counts came from (evidence).
    pub summary_lines: Vec<String>,
    /// Index of the line that ends the summary: auto-detection prefers the latest one.
    pub last_line: usize,
    /// Caveats worth telling (e.g. how something was counted).
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(format: Format) -> Self {
        Report {
            format,
            ran: 0,
            passed: 0,
            failed: 0,
            skipped: 0,
            unit: "tests",
            failures: Vec::new(),
            summary_lines: Vec::new(),
            last_line: 0,
            notes: Vec::new(),
        }
    }

    /// Record a failing test once, keeping the first location known for it.
    pub fn add_failure(&mut self, name: &str, path: Option<String>, line: Option<u32>) {
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        if let Some(f) = self.failures.iter_mut().find(|f| f.name == name) {
            if f.path.is_none() && path.is_some() {
                f.path = path;
                f.line = line;
            }
            return;
        }
        self.failures.push(Failure { name: name.to_string(), path, line });
    }

    /// Attach a location to an already recorded failure that has none.
    pub fn locate(&mut self, name: &str, path: String, line: u32) {
        if let Some(f) = self.failures.iter_mut().find(|f| f.name == name)
            && f.path.is_none()
        {
            f.path = Some(path);
            f.line = Some(line);
        }
    }
}

/// `"12 passed"` → `(12, "passed")`: a count, one space or more, and a label.
pub fn count_label(part: &str) -> Option<(u64, &str)> {
    let part = part.trim();
    let digits = part.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 12 {
        return None;
    }
    let rest = &part[digits..];
    if !rest.starts_with(' ') {
        return None;
    }
    let label = rest.trim();
    if label.is_empty() {
        return None;
    }
    Some((part[..digits].parse().ok()?, label))
}

/// A whole string of ASCII digits as a number.
pub fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `"src/lib.rs:7:138"` (possibly with a trailing `:` or `,`) → `("src/lib.rs", 7)`, for paths
/// that can be workspace-relative (not absolute, not in a registry or the standard library).
pub fn relative_location(token: &str) -> Option<(String, u32)> {
    let token = token.trim().trim_end_matches([':', ',']);
    let mut parts = token.rsplitn(3, ':');
    let last = parts.next()?;
    let middle = parts.next()?;
    let (path, line) = match parts.next() {
        // path:line:col
        Some(path) if number(last).is_some() && number(middle).is_some() => (path, middle),
        // path:line
        _ if number(last).is_some() => (&token[..token.len() - last.len() - 1], last),
        _ => return None,
    };
    let line: u32 = number(line)?.try_into().ok()?;
    if path.is_empty()
        || path.starts_with('/')
        || path.starts_with('<')
        || path.contains("://")
        || path.contains(".cargo/registry")
        || path.contains(".rustup/")
        || path.contains(' ')
        || path.split(['/', '\\']).any(|c| c == "..")
        || (path.len() > 1 && path.as_bytes()[1] == b':')
    {
        return None;
    }
    Some((path.to_string(), line))
}

/// Where a Rust panic happened, from a `thread 'x' panicked at src/lib.rs:7:5:` line (or the
/// pre-1.73 `panicked at 'msg', src/lib.rs:7:5`).
pub fn rust_panic_location(line: &str) -> Option<(String, u32)> {
    let at = line.find("panicked at ")?;
    let rest = &line[at + "panicked at ".len()..];
    if rest.starts_with('\'') {
        return relative_location(rest.rsplit(' ').next()?);
    }
    relative_location(rest.split(' ').next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count_label(" 12 passed"), Some((12, "passed")));
        assert_eq!(count_label("3 timed out"), Some((3, "timed out")));
        assert_eq!(count_label("+3 passed"), None);
        assert_eq!(count_label("3passed"), None);
    }

    #[test]
    fn locations() {
        assert_eq!(relative_location("src/lib.rs:7:138:"), Some(("src/lib.rs".into(), 7)));
        assert_eq!(relative_location("tests/test_x.py:19"), Some(("tests/test_x.py".into(), 19)));
        assert_eq!(relative_location("/rustc/abc/library/core/src/panicking.rs:80:14"), None);
        assert_eq!(relative_location("nothing"), None);
        assert_eq!(
            rust_panic_location("thread 'a::b' (7714) panicked at src/lib.rs:7:138:"),
            Some(("src/lib.rs".into(), 7))
        );
        assert_eq!(
            rust_panic_location("thread 'a' panicked at 'boom', src/x.rs:3:5"),
            Some(("src/x.rs".into(), 3))
        );
    }
}
