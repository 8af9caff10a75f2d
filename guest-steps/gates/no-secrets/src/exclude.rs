//! The `exclude` parameter: path prefixes matched by whole components, or simple globs.
//!
//! - `fixtures/`, `docs/api.md`: that directory of the workspace (and everything under it), or
//!   that file.
//! - `docs/*.md`: `*` matches within one component; `**` matches across components.
//! - `*.lock`, `testdata`: a pattern without `/` matches any component, at any depth.

pub struct Exclude {
    patterns: Vec<Pattern>,
}

struct Pattern {
    text: String,
    /// No `/`: matched against each component instead of a leading path.
    any_component: bool,
}

impl Exclude {
    pub fn new(patterns: &[String]) -> Result<Exclude, String> {
        let mut out = Vec::new();
        for p in patterns {
            let trimmed = p.trim().trim_start_matches("./").trim_end_matches('/');
            if trimmed.is_empty() {
                return Err(format!("exclude pattern {p:?} is empty"));
            }
            if trimmed.starts_with('/') || trimmed.split('/').any(|c| c == "..") {
                return Err(format!("exclude pattern {p:?} must be relative to the workspace, without `..`"));
            }
            out.push(Pattern {
                text: trimmed.to_string(),
                // `fixtures/` names the workspace's own directory; `fixtures`, any of that name.
                any_component: !p.contains('/'),
            });
        }
        Ok(Exclude { patterns: out })
    }

    /// The pattern that excludes `path`, if any.
    pub fn matching(&self, path: &str) -> Option<&str> {
        let components: Vec<&str> = path.split('/').collect();
        self.patterns.iter().find(|p| p.matches(path, &components)).map(|p| p.text.as_str())
    }
}

impl Pattern {
    fn matches(&self, path: &str, components: &[&str]) -> bool {
        if self.any_component {
            return components.iter().any(|c| glob(self.text.as_bytes(), c.as_bytes()));
        }
        // Any leading run of whole components: `vendor/*` excludes `vendor/a/b.txt`.
        let mut end = 0;
        for (i, c) in components.iter().enumerate() {
            end += c.len() + if i > 0 { 1 } else { 0 };
            if glob(self.text.as_bytes(), &path.as_bytes()[..end]) {
                return true;
            }
        }
        false
    }
}

/// `*` matches any run of characters other than `/`, `**` any run at all; everything else is
/// literal.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') if p.get(1) == Some(&b'*') => {
            let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
            (0..=s.len()).any(|i| glob(rest, &s[i..]) || glob(&p[2..], &s[i..]))
        }
        Some(b'*') => {
            let rest = &p[1..];
            for i in 0..=s.len() {
                if glob(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == b'/' {
                    break;
                }
            }
            false
        }
        Some(&c) => s.first() == Some(&c) && glob(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(patterns: &[&str], path: &str) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        Exclude::new(&patterns).unwrap().matching(path).is_some()
    }

    #[test]
    fn prefixes_and_globs() {
        assert!(ex(&["fixtures/"], "fixtures/a/b.txt"));
        assert!(!ex(&["fixtures/"], "tests/fixtures/a.txt"));
        assert!(ex(&["./fixtures/"], "fixtures/a.txt"));
        assert!(ex(&["fixtures"], "tests/fixtures/key.pem"));
        assert!(!ex(&["fix"], "fixtures/a.txt"));
        assert!(ex(&["tests/fixtures"], "tests/fixtures/a.txt"));
        assert!(!ex(&["tests/fixtures"], "tests/fixtures2/a.txt"));
        assert!(ex(&["docs/api.md"], "docs/api.md"));
        assert!(ex(&["*.lock"], "sub/Cargo.lock"));
        assert!(!ex(&["*.lock"], "sub/lockfile.txt"));
        assert!(ex(&["docs/*.md"], "docs/a.md"));
        assert!(!ex(&["docs/*.md"], "docs/x/a.md"));
        assert!(ex(&["docs/**/*.md"], "docs/x/y/a.md"));
        assert!(ex(&["docs/**/*.md"], "docs/a.md"));
        assert!(ex(&["vendor/*"], "vendor/pkg/src/x.rs"));
        assert!(Exclude::new(&["../x".to_string()]).is_err());
        assert!(Exclude::new(&["".to_string()]).is_err());
    }
}
