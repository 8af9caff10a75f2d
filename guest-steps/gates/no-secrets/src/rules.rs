//! What a secret looks like: well-known token formats, private key headers, and high-entropy
//! values assigned to names that say they hold a secret. All hand-written scanning over bytes
//! (every pattern is ASCII), so the component stays small.

/// One suspected secret on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// What it looks like, e.g. "AWS access key id".
    pub kind: &'static str,
    /// Byte range of the secret in the line.
    pub start: usize,
    pub end: usize,
    /// Extra words for the message (the variable's name, the key type), never secret.
    pub detail: Option<String>,
    /// Whether the matched text itself is secret (a PEM header is not: the key follows it).
    pub redact: bool,
}

/// Every suspected secret on one line.
pub fn scan_line(line: &str) -> Vec<Hit> {
    let b = line.as_bytes();
    let mut hits = Vec::new();
    private_key(line, &mut hits);
    aws_key_id(b, &mut hits);
    github(b, &mut hits);
    slack(b, &mut hits);
    google(b, &mut hits);
    stripe(b, &mut hits);
    sk_keys(b, &mut hits);
    // A token assigned to `GITHUB_TOKEN=` is reported once, by its format.
    for hit in assignments(line) {
        if !hits.iter().any(|h| h.start < hit.end && hit.start < h.end) {
            hits.push(hit);
        }
    }
    hits.sort_by_key(|h| h.start);
    hits
}

/// Redact all but the first few characters: `AKIA… (20 chars)`.
pub fn redact(secret: &str) -> String {
    let n = secret.chars().count();
    let keep = match n {
        0..8 => 0,
        8..16 => 2,
        _ => 4,
    };
    let head: String = secret.chars().take(keep).collect();
    format!("{head}… ({n} chars)")
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Positions where `needle` occurs in `hay`.
fn find_all<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    (0..hay.len().saturating_sub(needle.len() - 1)).filter(move |&i| hay[i..].starts_with(needle))
}

/// How many bytes from `from` on satisfy `pred`.
fn run(b: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    b.get(from..).map_or(0, |rest| rest.iter().take_while(|&&c| pred(c)).count())
}

/// The byte before `i` is not part of a word (or there is none).
fn boundary_before(b: &[u8], i: usize, also: &[u8]) -> bool {
    i == 0 || !(is_word(b[i - 1]) || also.contains(&b[i - 1]))
}

fn hit(kind: &'static str, start: usize, end: usize) -> Hit {
    Hit { kind, start, end, detail: None, redact: true }
}

/// PEM private key headers: `-----BEGIN <TYPE> PRIVATE KEY-----` (RSA, EC, DSA, OPENSSH,
/// ENCRYPTED, or none) and PGP's `... PRIVATE KEY BLOCK-----`.
fn private_key(line: &str, hits: &mut Vec<Hit>) {
    const BEGIN: &str = "-----BEGIN ";
    let mut from = 0;
    while let Some(i) = line[from..].find(BEGIN) {
        let start = from + i;
        let label_start = start + BEGIN.len();
        from = label_start;
        let Some(len) = line[label_start..].find("-----") else {
            break;
        };
        let label = &line[label_start..label_start + len];
        let shaped = label.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ');
        if shaped && (label.ends_with("PRIVATE KEY") || label.ends_with("PRIVATE KEY BLOCK")) {
            let end = label_start + len + 5;
            hits.push(Hit {
                kind: "private key",
                start,
                end,
                detail: Some(format!("{label} header")),
                redact: false,
            });
            from = end;
        }
    }
}

/// AWS access key ids: `AKIA` (long-term) or `ASIA` (temporary) and 16 uppercase letters or digits.
fn aws_key_id(b: &[u8], hits: &mut Vec<Hit>) {
    for prefix in [&b"AKIA"[..], b"ASIA"] {
        for i in find_all(b, prefix) {
            let n = run(b, i + 4, |c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if boundary_before(b, i, &[]) && n == 16 {
                hits.push(hit("AWS access key id", i, i + 20));
            }
        }
    }
}

/// GitHub tokens: `ghp_` / `gho_` / `ghu_` / `ghs_` / `ghr_` and 36 or more letters or digits,
/// and fine-grained `github_pat_...`.
fn github(b: &[u8], hits: &mut Vec<Hit>) {
    for prefix in [&b"ghp_"[..], b"gho_", b"ghu_", b"ghs_", b"ghr_"] {
        for i in find_all(b, prefix) {
            let n = run(b, i + 4, |c| c.is_ascii_alphanumeric());
            if boundary_before(b, i, &[]) && n >= 36 && !is_word(*b.get(i + 4 + n).unwrap_or(&b' ')) {
                hits.push(hit("GitHub token", i, i + 4 + n));
            }
        }
    }
    for i in find_all(b, b"github_pat_") {
        let n = run(b, i + 11, is_word);
        if boundary_before(b, i, &[]) && n >= 40 {
            hits.push(hit("GitHub fine-grained token", i, i + 11 + n));
        }
    }
}

/// Slack tokens (`xoxb-`, `xoxa-`, `xoxp-`, `xoxr-`, `xoxs-`) and incoming webhook URLs.
fn slack(b: &[u8], hits: &mut Vec<Hit>) {
    for i in find_all(b, b"xox") {
        if !matches!(b.get(i + 3), Some(b'b' | b'a' | b'p' | b'r' | b's')) || b.get(i + 4) != Some(&b'-') {
            continue;
        }
        let n = run(b, i + 5, |c| c.is_ascii_alphanumeric() || c == b'-');
        let tail = &b[i + 5..i + 5 + n];
        if boundary_before(b, i, &[]) && n >= 10 && tail.iter().any(u8::is_ascii_digit) {
            hits.push(hit("Slack token", i, i + 5 + n));
        }
    }
    const HOOK: &[u8] = b"hooks.slack.com/services/";
    for i in find_all(b, HOOK) {
        let n = run(b, i + HOOK.len(), |c| c.is_ascii_alphanumeric() || c == b'/' || c == b'_');
        if n >= 20 {
            hits.push(hit("Slack webhook URL", i, i + HOOK.len() + n));
        }
    }
}

/// Google API keys: `AIza` and 35 letters, digits, `_` or `-`.
fn google(b: &[u8], hits: &mut Vec<Hit>) {
    for i in find_all(b, b"AIza") {
        let n = run(b, i + 4, |c| is_word(c) || c == b'-');
        if boundary_before(b, i, b"-") && n == 35 {
            hits.push(hit("Google API key", i, i + 39));
        }
    }
}

/// Stripe live secret and restricted keys.
fn stripe(b: &[u8], hits: &mut Vec<Hit>) {
    for prefix in [&b"sk_live_"[..], b"rk_live_"] {
        for i in find_all(b, prefix) {
            let n = run(b, i + 8, |c| c.is_ascii_alphanumeric());
            if boundary_before(b, i, &[]) && n >= 16 {
                hits.push(hit("Stripe live key", i, i + 8 + n));
            }
        }
    }
}

/// OpenAI-style `sk-...` keys (including `sk-proj-...`) and Anthropic `sk-ant-...` keys: long,
/// mixed-case, with digits.
fn sk_keys(b: &[u8], hits: &mut Vec<Hit>) {
    for i in find_all(b, b"sk-") {
        if !boundary_before(b, i, b"-") {
            continue;
        }
        let n = run(b, i + 3, |c| is_word(c) || c == b'-');
        let body = &b[i + 3..i + 3 + n];
        let anthropic = body.starts_with(b"ant-");
        let mixed = body.iter().any(u8::is_ascii_digit)
            && body.iter().any(u8::is_ascii_uppercase)
            && body.iter().any(u8::is_ascii_lowercase);
        if n >= 32 && (anthropic || mixed) {
            let kind = if anthropic { "Anthropic API key" } else { "OpenAI-style API key" };
            hits.push(hit(kind, i, i + 3 + n));
        }
    }
}

/// Words that, in a variable's name, say it holds a secret (compared without `_`, `-`, `.`).
const SECRET_NAMES: [&str; 7] =
    ["secret", "token", "password", "passwd", "apikey", "accesskey", "privatekey"];
/// Shortest value worth judging, and the entropy (bits per character) a secret has.
const MIN_VALUE_LEN: usize = 20;
const MIN_ENTROPY: f64 = 3.5;

/// `NAME = value`, `NAME: "value"`, `"name": "value"`, `name := "value"`, `NAME=value`,
/// `let api_key: &str = "value"`, `var apiKey string = "value"`, where the name says secret and
/// the value looks random.
fn assignments(line: &str) -> Vec<Hit> {
    let b = line.as_bytes();
    let mut hits: Vec<Hit> = Vec::new();
    // Values already judged: an operator inside one (`secret=arn:aws:...:secret:x`) is part of
    // that value, not an assignment of its own.
    let mut judged: Vec<(usize, usize)> = Vec::new();
    for op in 0..b.len() {
        if judged.iter().any(|&(start, end)| start <= op && op < end) {
            continue;
        }
        let Some((value_from, names)) = operator(b, op) else {
            continue;
        };
        let Some(name) = names.into_iter().find(|n| says_secret(n)) else {
            continue;
        };
        let Some((start, end)) = value(b, value_from) else {
            continue;
        };
        judged.push((start, end));
        let v = &line[start..end];
        if let Some(entropy) = looks_secret(v) {
            hits.push(Hit {
                kind: "high-entropy secret",
                start,
                end,
                detail: Some(format!("assigned to {name}, {entropy:.1} bits/char")),
                redact: true,
            });
        }
    }
    hits
}

fn says_secret(name: &str) -> bool {
    let normalized: String =
        name.chars().filter(|c| !matches!(c, '_' | '-' | '.')).map(|c| c.to_ascii_lowercase()).collect();
    SECRET_NAMES.iter().any(|w| normalized.contains(w))
}

/// If `b[op]` is an assignment operator (`=`, `:`, `:=`, `=>`): where its value starts, and the
/// names that may be assigned: the identifier right before it, and for `=` also the identifiers
/// of the declaration before that (`api_key` in `let api_key: &str =`, `apiKey` in
/// `var apiKey string =`).
fn operator(b: &[u8], op: usize) -> Option<(usize, Vec<&str>)> {
    let prev = if op > 0 { b[op - 1] } else { b'\n' };
    let next = b.get(op + 1).copied().unwrap_or(b'\n');
    let value_from = match b[op] {
        b'=' => {
            // Not `==`, `!=`, `<=`, `>=`, `=~`; `:=` is handled at its `:`.
            if matches!(prev, b'=' | b'!' | b'<' | b'>' | b':') || matches!(next, b'=' | b'~') {
                return None;
            }
            if next == b'>' { op + 2 } else { op + 1 }
        }
        b':' => {
            // Not `::` (paths) nor `://` (URLs).
            if prev == b':' || next == b':' || b[op + 1..].starts_with(b"//") {
                return None;
            }
            if next == b'=' { op + 2 } else { op + 1 }
        }
        _ => return None,
    };
    // The name: skip spaces and a closing quote (`"key": ...`), then identifier characters.
    let mut end = op;
    while end > 0 && matches!(b[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    if end > 0 && matches!(b[end - 1], b'"' | b'\'' | b'`') {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && is_name(b[start - 1]) {
        start -= 1;
    }
    let mut names = Vec::new();
    if start < end {
        // Every byte in the range is ASCII, so this is valid UTF-8.
        names.push(std::str::from_utf8(&b[start..end]).ok()?);
    }
    if b[op] == b'=' {
        // The declaration: back to the previous `,`, `;`, `{`, `(` or `)`; its last few identifiers.
        let from = b[..start].iter().rposition(|c| b",;{()".contains(c)).map_or(0, |i| i + 1);
        let declaration = std::str::from_utf8(&b[from..start]).ok()?;
        names.extend(
            declaration
                .split(|c: char| !c.is_ascii() || !is_name(c as u8))
                .filter(|w| !w.is_empty())
                .rev()
                .take(3),
        );
    }
    (!names.is_empty()).then_some((value_from, names))
}

fn is_name(c: u8) -> bool {
    is_word(c) || matches!(c, b'-' | b'.')
}

/// The value after an operator: a quoted string's contents, or a bare word.
fn value(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < b.len() && matches!(b[i], b' ' | b'\t') {
        i += 1;
    }
    let first = *b.get(i)?;
    if matches!(first, b'"' | b'\'' | b'`') {
        let start = i + 1;
        let mut j = start;
        while j < b.len() && b[j] != first {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        return Some((start, j.min(b.len())));
    }
    let n = run(b, i, |c| {
        c.is_ascii_graphic()
            && !matches!(
                c,
                b',' | b';' | b'&' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b'\'' | b'`'
            )
    });
    // A bare value runs to the first space, delimiter (`,;&` and brackets) or non-ASCII byte:
    // `KEY=abc def` assigns `abc`, `?token=abc&page=2` assigns `abc`.
    (n > 0).then_some((i, i + n))
}

/// The value's entropy when it looks like a real secret rather than a word, a reference or a
/// placeholder.
fn looks_secret(v: &str) -> Option<f64> {
    if v.len() < MIN_VALUE_LEN || v.len() > 1000 || v.bytes().any(|c| c.is_ascii_whitespace()) {
        return None;
    }
    if is_placeholder(v) {
        return None;
    }
    // An AWS resource name identifies a secret, it is not one.
    if v.starts_with("arn:") {
        return None;
    }
    // A URL is an address, unless it carries credentials (`https://user:pass@host`).
    if let Some((_, rest)) = v.split_once("://")
        && !rest.split('/').next().unwrap_or("").contains('@')
    {
        return None;
    }
    let b = v.as_bytes();
    let classes = [
        b.iter().any(u8::is_ascii_lowercase),
        b.iter().any(u8::is_ascii_uppercase),
        b.iter().any(u8::is_ascii_digit),
    ];
    // Words, identifiers and paths (`config.secrets.github_token`, `/run/secrets/db`) use one
    // class of letters; generated secrets mix them.
    if classes.iter().filter(|&&c| c).count() < 2 {
        return None;
    }
    let e = entropy(v);
    (e >= MIN_ENTROPY).then_some(e)
}

fn is_placeholder(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    const TEMPLATE: [&str; 6] = ["${", "{{", "$(", "%(", "<", ">"];
    const WORDS: [&str; 17] = [
        "example",
        "placeholder",
        "changeme",
        "change_me",
        "change-me",
        "dummy",
        "sample",
        "your_",
        "your-",
        "yourtoken",
        "xxxx",
        "****",
        "....",
        "redacted",
        "replace",
        "insert",
        "fake",
    ];
    lower.starts_with('$')
        || TEMPLATE.iter().any(|t| lower.contains(t))
        || WORDS.iter().any(|w| lower.contains(w))
}

/// Shannon entropy in bits per character.
pub fn entropy(v: &str) -> f64 {
    let mut counts = [0u32; 256];
    for c in v.bytes() {
        counts[c as usize] += 1;
    }
    let n = v.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(line: &str) -> Vec<&'static str> {
        scan_line(line).into_iter().map(|h| h.kind).collect()
    }

    // Fake secrets are assembled at run time so that this file holds none.
    fn rand(n: usize) -> String {
        let alphabet = b"aZ3kQ9xT7mB2vN5cR8pL4wH6jY1fD0sG";
        let mut x: u32 = 0x9e37_79b9;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                alphabet[(x % alphabet.len() as u32) as usize] as char
            })
            .collect()
    }

    #[test]
    fn formats() {
        let upper: String = rand(16).to_ascii_uppercase();
        assert_eq!(kinds(&format!("key = {}{upper}", "AKIA")), ["AWS access key id"]);
        assert_eq!(kinds(&format!("x{}{upper}", "AKIA")), Vec::<&str>::new());
        assert_eq!(kinds(&format!("t: {}{}", "ghp_", rand(36))), ["GitHub token"]);
        assert_eq!(kinds(&format!("t: {}{}", "github_pat_", rand(60))), ["GitHub fine-grained token"]);
        assert_eq!(kinds(&format!("{}-1234567890-{}", "xoxb", rand(20))), ["Slack token"]);
        assert_eq!(kinds(&format!("\"{}{}\"", "AIza", rand(35))), ["Google API key"]);
        assert_eq!(kinds(&format!("{}{}", "sk_live_", rand(24))), ["Stripe live key"]);
        assert_eq!(kinds(&format!("{}{}", "sk-ant-api03-", rand(40))), ["Anthropic API key"]);
        assert_eq!(kinds(&format!("{}{}", "sk-proj-", rand(48))), ["OpenAI-style API key"]);
        assert_eq!(kinds("task-list-of-things-that-are-all-lowercase-words"), Vec::<&str>::new());
        assert_eq!(kinds(&format!("-----BEGIN {}PRIVATE KEY-----", "OPENSSH ")), ["private key"]);
        assert_eq!(kinds(&format!("-----BEGIN PGP {} BLOCK-----", "PRIVATE KEY")), ["private key"]);
        assert_eq!(kinds("-----BEGIN PUBLIC KEY-----"), Vec::<&str>::new());
    }

    #[test]
    fn assignments_need_a_secret_name_and_a_random_value() {
        let v = rand(32);
        assert_eq!(kinds(&format!("API_KEY={v}")), ["high-entropy secret"]);
        assert_eq!(kinds(&format!("  \"clientSecret\": \"{v}\",")), ["high-entropy secret"]);
        assert_eq!(kinds(&format!("db_password := '{v}'")), ["high-entropy secret"]);
        assert_eq!(kinds(&format!("export AUTH_TOKEN={v} # ci")), ["high-entropy secret"]);
        assert_eq!(kinds(&format!("let api_key: &str = \"{v}\";")), ["high-entropy secret"]);
        assert_eq!(kinds(&format!("var apiKey string = \"{v}\"")), ["high-entropy secret"]);
        let url = format!("curl 'https://x.io/?access_token={v}&page=2'");
        let hits = scan_line(&url);
        assert_eq!(hits.len(), 1);
        assert_eq!(&url[hits[0].start..hits[0].end], v);
        assert_eq!(kinds(&format!("USERNAME={v}")), Vec::<&str>::new());
        assert_eq!(kinds(&format!("f(token, x); user = \"{v}\"")), Vec::<&str>::new());
        // One finding for one value, even when it holds more `:` and `=`.
        assert_eq!(kinds(&format!("password=token:{v}")), ["high-entropy secret"]);
        // Placeholders, references, words, short values, comparisons.
        for line in [
            "API_KEY=your-api-key-goes-here-0000",
            "PASSWORD=changeme-changeme-changeme1",
            "TOKEN=${GITHUB_TOKEN_FROM_THE_ENVIRONMENT}",
            "token: ${{ secrets.GITHUB_TOKEN_FOR_RELEASES }}",
            "secret = <put-the-secret-here-1234567>",
            "token = config.secrets.github_token_value",
            "TOKEN_FILE=/var/run/secrets/kubernetes.io/serviceaccount/token",
            "API_KEY=short1A",
            "if token == \"aZ3kQ9xT7mB2vN5cR8pL4wH6\" {",
            "password = \"correct horse battery staple 12\"",
            "TOKEN_URL=https://auth.example.com/oauth2/v1/token",
            "API_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
            // An ARN names a secret; it is not one.
            &["SECRET_ARN=arn:aws:secretsmanager", ":us-east-1:123456789012:secret:", &v].concat(),
        ] {
            assert_eq!(kinds(line), Vec::<&str>::new(), "{line}");
        }
    }

    #[test]
    fn a_token_assigned_to_a_name_is_reported_once() {
        let line = format!("GITHUB_TOKEN={}{}", "ghp_", rand(36));
        assert_eq!(kinds(&line), ["GitHub token"]);
    }

    #[test]
    fn redaction_keeps_a_few_characters() {
        let s = rand(40);
        let r = redact(&s);
        assert!(r.starts_with(&s[..4]) && r.ends_with("(40 chars)") && !r.contains(&s[..5]), "{r}");
        assert_eq!(redact("abc"), "… (3 chars)");
    }
}
