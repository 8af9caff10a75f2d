//! Turning a terminal transcript into plain lines: ANSI escape sequences out, carriage-return
//! overwrites resolved the way a terminal would show them.

/// Remove ANSI escape sequences: CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL` or `ESC ] ... ESC \`,
/// used for hyperlinks), charset designations (`ESC ( B`), and other two-character escapes.
pub fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' && c != '\u{9b}' {
            out.push(c);
            continue;
        }
        if c == '\u{9b}' {
            skip_csi(&mut chars);
            continue;
        }
        match chars.next() {
            Some('[') => skip_csi(&mut chars),
            Some(']') | Some('P') | Some('X') | Some('^') | Some('_') => {
                // OSC / DCS / SOS / PM / APC: up to BEL or ST (ESC \).
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        if chars.peek() == Some(&'\\') {
                            chars.next();
                        }
                        break;
                    }
                }
            }
            // Charset designation: ESC ( B and friends take one more character.
            Some('(') | Some(')') | Some('*') | Some('+') | Some('-') | Some('.') | Some('/') => {
                chars.next();
            }
            // Any other escape is two characters long (ESC 7, ESC =, ...).
            Some(_) | None => {}
        }
    }
    out
}

fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    // Parameter and intermediate bytes (0x20..=0x3f), then one final byte (0x40..=0x7e).
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
        if !('\u{20}'..='\u{3f}').contains(&c) {
            // Malformed: stop at anything outside a CSI sequence.
            break;
        }
    }
}

/// Split into lines as a terminal would show them: `\r\n` and `\n` end lines, and a bare `\r`
/// returns to the start of the line, so only the text after the last one is kept (progress
/// indicators overwrite themselves this way).
pub fn lines(text: &str) -> Vec<&str> {
    text.split('\n')
        .map(|line| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            match line.rfind('\r') {
                Some(i) => &line[i + 1..],
                None => line,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_csi_osc_and_charset() {
        let s = "\u{1b}[1m\u{1b}[92m   Doc-tests\u{1b}[0m x\u{1b}(B\u{1b}[m \u{1b}]8;;http://a\u{7}link\u{1b}]8;;\u{1b}\\";
        assert_eq!(strip(s), "   Doc-tests x link");
    }

    #[test]
    fn carriage_returns_overwrite() {
        assert_eq!(lines("a\r\nb\rc\n"), vec!["a", "c", ""]);
    }
}
