//! The git commands the gate runs (exactly those its manifest declares), and reading their output:
//! the added lines of a zero-context diff, with their line numbers in the new file.

use greenlight_gate::{GateError, process};

/// Options that keep the repository's own config from running programs or changing the output.
const SAFE: [&str; 6] =
    ["--no-optional-locks", "-c", "core.fsmonitor=false", "-c", "core.quotepath=off", "diff"];
const DIFF_OPTIONS: [&str; 9] = [
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--no-prefix",
    "--relative",
    "--submodule=short",
    "--inter-hunk-context=0",
    "-U0",
];

/// Whether the repository has a commit checked out (a new repository has none).
pub fn has_head() -> Result<bool, GateError> {
    let out = process::run("git", &["rev-parse", "--verify", "--quiet", "HEAD"])?;
    match out.exit_code {
        Some(0) => Ok(true),
        Some(1) if !out.truncated && !out.timed_out => Ok(false),
        _ => Err(GateError::new(format!(
            "the workspace does not look like a git repository (`git rev-parse --verify --quiet HEAD` failed: {})",
            first_line(&out.stderr)
        ))),
    }
}

/// `git diff ... HEAD` (the working tree against HEAD) or `git diff ... --cached` (the index
/// against HEAD, or against nothing in a repository without commits).
pub fn diff(against: &str) -> Result<String, GateError> {
    let mut args: Vec<&str> = SAFE.to_vec();
    args.extend(DIFF_OPTIONS);
    args.push(against);
    output(&args)
}

/// Untracked files that are not ignored (`--others --exclude-standard`), or every file in the
/// index (`--cached`).
pub fn ls_files(which: &[&str]) -> Result<Vec<String>, GateError> {
    let mut args: Vec<&str> = SAFE[..3].to_vec();
    args.push("ls-files");
    args.extend(which);
    args.push("-z");
    let out = output(&args)?;
    Ok(out.split('\0').filter(|p| !p.is_empty()).map(str::to_string).collect())
}

fn output(args: &[&str]) -> Result<String, GateError> {
    let out = process::run("git", args)?;
    let what = format!("git {}", args.join(" "));
    if out.truncated {
        return Err(GateError::new(format!(
            "`{what}` printed more than the host lets a gate read, so the change cannot be scanned completely"
        )));
    }
    if out.timed_out {
        return Err(GateError::new(format!("`{what}` timed out")));
    }
    match out.exit_code {
        Some(0) => Ok(out.stdout),
        Some(c) => {
            Err(GateError::new(format!("`{what}` failed (exit code {c}): {}", first_line(&out.stderr))))
        }
        None => Err(GateError::new(format!("`{what}` was killed"))),
    }
}

fn first_line(s: &str) -> &str {
    s.trim().lines().next().unwrap_or("")
}

/// What a diff holds besides added lines.
#[derive(Default, Debug)]
pub struct DiffFiles {
    /// Files git reports as binary: their content is not in the diff.
    pub binary: Vec<String>,
}

/// Call `f(path, line, text)` for every added line of a diff made with `-U0 --no-prefix`, where
/// `line` is the 1-based line in the new version of the file.
pub fn added_lines(diff: &str, mut f: impl FnMut(&str, u32, &str)) -> DiffFiles {
    let mut files = DiffFiles::default();
    // The file of the current section: from its `diff --git` line, then its `+++` line.
    let mut path: Option<String> = None;
    let mut new_line = 0u32;
    // Lines of the current hunk still to come, old side and new side: a hunk's `+` and `-`
    // lines are counted, never mistaken for headers (an added line `++ x` reads `+++ x`).
    let (mut old_left, mut new_left) = (0u32, 0u32);
    for raw in diff.split('\n') {
        if old_left > 0 || new_left > 0 {
            match raw.as_bytes().first() {
                Some(b'+') => {
                    if let Some(p) = &path {
                        f(p, new_line, raw[1..].strip_suffix('\r').unwrap_or(&raw[1..]));
                    }
                    new_line += 1;
                    new_left = new_left.saturating_sub(1);
                    continue;
                }
                Some(b'-') => {
                    old_left = old_left.saturating_sub(1);
                    continue;
                }
                Some(b' ') => {
                    new_line += 1;
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                    continue;
                }
                Some(b'\\') => continue,
                // Not a hunk line: the counts were off; read it as a header.
                _ => (old_left, new_left) = (0, 0),
            }
        }
        if let Some(rest) = raw.strip_prefix("diff --git ") {
            path = git_header_path(rest);
        } else if let Some(rest) = raw.strip_prefix("+++ ") {
            let rest = rest.strip_suffix('\t').unwrap_or(rest);
            path = (rest != "/dev/null").then(|| unquote(rest));
        } else if let Some(rest) = raw.strip_prefix("@@ ") {
            if let Some((old_count, start, new_count)) = hunk_header(rest) {
                (old_left, new_left, new_line) = (old_count, new_count, start);
            }
        } else if raw.starts_with("Binary files ")
            && let Some(p) = &path
        {
            files.binary.push(p.clone());
        }
    }
    files
}

/// `-12,3 +14,2 @@ fn x()` → `(3, 14, 2)`; a missing count is 1.
fn hunk_header(rest: &str) -> Option<(u32, u32, u32)> {
    let mut words = rest.split(' ');
    let old = words.next()?.strip_prefix('-')?;
    let new = words.next()?.strip_prefix('+')?;
    let range = |r: &str| -> Option<(u32, u32)> {
        match r.split_once(',') {
            Some((start, count)) => Some((start.parse().ok()?, count.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (_, old_count) = range(old)?;
    let (new_start, new_count) = range(new)?;
    Some((old_count, new_start, new_count))
}

/// The path in `diff --git PATH PATH` (no prefixes, both the same without renames).
fn git_header_path(rest: &str) -> Option<String> {
    if rest.starts_with('"') {
        let end = closing_quote(rest)?;
        return Some(unquote(&rest[..=end]));
    }
    let half = rest.len() / 2;
    (rest.len() % 2 == 1 && rest.is_char_boundary(half) && rest[..half] == rest[half + 1..])
        .then(|| rest[..half].to_string())
}

fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Undo git's C-style quoting of unusual paths: `"a\tb\303\251"` → `a<TAB>bé`.
pub fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return s.to_string();
    };
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        out.push(match c {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'v' => 0x0b,
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    if let Some(&d @ b'0'..=b'7') = b.get(i) {
                        v = v * 8 + u32::from(d - b'0');
                        i += 1;
                    }
                }
                v as u8
            }
            other => other,
        });
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(diff: &str) -> Vec<(String, u32, String)> {
        let mut out = Vec::new();
        added_lines(diff, |p, l, t| out.push((p.to_string(), l, t.to_string())));
        out
    }

    #[test]
    fn added_lines_and_numbers() {
        let diff = "\
diff --git a.txt a.txt
index 1..2 100644
--- a.txt
+++ a.txt
@@ -2 +2 @@
-old
+new
@@ -10,0 +11,3 @@ ctx
+x
+++ looks like a header
+z
diff --git new dir/f.txt new dir/f.txt
new file mode 100644
--- /dev/null
+++ new dir/f.txt\t
@@ -0,0 +1 @@
+hello\r
\\ No newline at end of file
diff --git gone.txt gone.txt
deleted file mode 100644
--- gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git img.png img.png
Binary files /dev/null and img.png differ
";
        let got = lines(diff);
        let want = [
            ("a.txt", 2, "new"),
            ("a.txt", 11, "x"),
            ("a.txt", 12, "++ looks like a header"),
            ("a.txt", 13, "z"),
            ("new dir/f.txt", 1, "hello"),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1, g.2.as_str()), w);
        }
        let files = added_lines(diff, |_, _, _| {});
        assert_eq!(files.binary, ["img.png"]);
    }

    #[test]
    fn quoted_paths() {
        assert_eq!(unquote("\"caf\\303\\251 \\\"x\\\".txt\""), "café \"x\".txt");
        assert_eq!(unquote("plain.txt"), "plain.txt");
        assert_eq!(git_header_path("\"a\\tb\" \"a\\tb\""), Some("a\tb".to_string()));
    }
}
