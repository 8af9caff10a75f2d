//! Text from components and steps (summaries, findings, evidence, logs, manifests, step output) is
//! untrusted: before it reaches a terminal, control characters are shown escaped, so a gate or a
//! step cannot move the cursor, rewrite earlier lines or forge greenlight's own output. JSON output
//! is escaped by serde.

use std::borrow::Cow;

/// For one-line fields: every control character, newlines included, escaped.
pub fn line(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// For multi-line fields: control characters escaped, but newlines and tabs kept.
pub fn block(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() || is_bidi_override(c)) && !keep(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Characters that reorder how a line is displayed (the "trojan source" kind).
fn is_bidi_override(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_control_is_shown_not_obeyed() {
        assert_eq!(line("ok\r\x1b[2KPASS"), "ok\\r\\u{1b}[2KPASS");
        assert_eq!(line("a\nb"), "a\\nb");
        assert_eq!(block("a\nb\x1b"), "a\nb\\u{1b}");
        assert!(matches!(line("plain text"), Cow::Borrowed(_)));
    }
}
