//! End-to-end tests of `builtin:no-secrets` through the real `greenlight` binary, on real git
//! repositories. Every fake secret is assembled at run time from pieces, so that this repository
//! never holds a string that looks like a credential.

mod common;
use common::*;

fn aws_key() -> String {
    format!("{}{}", "AKIA", "Q7".repeat(8))
}

fn github_token() -> String {
    format!("{}{}", "ghp_", "aB3dE5gH7jK9".repeat(3))
}

fn private_key_header() -> String {
    format!("-----BEGIN {} PRIVATE KEY-----", "RSA")
}

fn private_key_body() -> String {
    format!("{}{}", "MIIEowIBAAKCAQEA", "x7Hq2Lm9Zr4Tn8Pw".repeat(3))
}

/// A value that looks generated: mixed case and digits, no repetition.
fn random_value() -> String {
    ["q8Zr2LmX", "w4Tn7PfK", "9sVb3HcY", "6jD1"].concat()
}

fn run(repo: &Repo, extra: &[&str]) -> GateRun {
    let cache = tempfile::tempdir().unwrap();
    let run = gate_run(cache.path(), "builtin:no-secrets", repo.path(), extra);
    assert!(
        matches!(run.outcome(), "pass" | "fail"),
        "gate error: {} {}\nstderr: {}",
        run.summary(),
        run.evidence(),
        run.stderr
    );
    run
}

/// (path, line, message) of every finding.
fn findings(run: &GateRun) -> Vec<(String, u64, String)> {
    run.findings()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
                f["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn has_finding(run: &GateRun, path: &str, line: u64, kind: &str) -> bool {
    findings(run).iter().any(|(p, l, m)| p == path && *l == line && m.contains(kind))
}

/// Neither the secret nor a long piece of it appears anywhere in what greenlight printed.
fn assert_not_leaked(run: &GateRun, secret: &str) {
    let everything = format!("{}\n{}", run.json, run.stderr);
    assert!(!everything.contains(secret), "the secret was printed in full:\n{everything}");
    let tail = &secret[secret.len() - 10..];
    assert!(!everything.contains(tail), "the end of the secret was printed:\n{everything}");
}

#[test]
fn a_clean_change_passes() {
    let repo = Repo::new(&[("src/main.rs", "fn main() {}\n"), ("README.md", "# demo\n")]);
    repo.write("src/main.rs", "fn main() {\n    println!(\"hello\");\n}\n");
    repo.write("docs/guide.md", "Set `API_KEY` in your environment.\ntoken = load_token()\n");
    let run = run(&repo, &[]);
    assert_eq!((run.code, run.outcome()), (0, "pass"), "{} {:?}", run.summary(), findings(&run));
    assert!(run.summary().starts_with("no secrets found in 2 files"), "{}", run.summary());
    assert!(run.summary().contains("lines scanned"), "{}", run.summary());
}

#[test]
fn secrets_are_found_where_they_were_added() {
    let repo = Repo::new(&[
        ("config/app.env", "APP_NAME=demo\nLOG_LEVEL=info\nPORT=8080\n"),
        ("README.md", "# demo\n\nSome text.\n"),
        ("src/settings.py", "DEBUG = False\nNAME = 'demo'\n"),
    ]);
    // Staged: an AWS key id on line 3 of a modified tracked file.
    repo.write(
        "config/app.env",
        &format!("APP_NAME=demo\nLOG_LEVEL=info\nAWS_ACCESS_KEY_ID={}\nPORT=8080\n", aws_key()),
    );
    repo.git(&["add", "config/app.env"]);
    // Unstaged: a private key block on line 4 of a tracked file.
    repo.write(
        "README.md",
        &format!(
            "# demo\n\nSome text.\n{}\n{}\n-----END RSA PRIVATE KEY-----\n",
            private_key_header(),
            private_key_body()
        ),
    );
    // Untracked, in a new directory: a GitHub token on line 2.
    repo.write("newdir/deeper/notes.txt", &format!("remember:\nuse {} for the bot\n", github_token()));
    // Unstaged: a high-entropy value assigned to API_KEY on line 3.
    repo.write(
        "src/settings.py",
        &format!("DEBUG = False\nNAME = 'demo'\nAPI_KEY = \"{}\"\n", random_value()),
    );

    let run = run(&repo, &[]);
    assert_eq!((run.code, run.outcome()), (1, "fail"), "{}", run.summary());
    let all = findings(&run);
    assert!(has_finding(&run, "config/app.env", 3, "AWS access key id"), "{all:?}");
    assert!(has_finding(&run, "README.md", 4, "private key"), "{all:?}");
    assert!(has_finding(&run, "newdir/deeper/notes.txt", 2, "GitHub token"), "{all:?}");
    assert!(has_finding(&run, "src/settings.py", 3, "high-entropy secret"), "{all:?}");
    assert!(all.iter().any(|(_, _, m)| m.contains("API_KEY")), "the variable is named: {all:?}");
    assert_eq!(all.len(), 4, "exactly these four: {all:?}");
    assert!(run.findings().iter().all(|f| f["severity"] == "error"));
    assert!(run.summary().starts_with("4 possible secrets in 4 files"), "{}", run.summary());

    for secret in [aws_key(), github_token(), random_value(), private_key_body()] {
        assert_not_leaked(&run, &secret);
    }
}

#[test]
fn placeholders_and_references_are_not_secrets() {
    let repo = Repo::new(&[("README.md", "# demo\n")]);
    repo.write(
        ".env.example",
        "API_KEY=your-api-key-goes-here-xxxxxxxx\n\
         DB_PASSWORD=${DB_PASSWORD_FROM_THE_VAULT}\n\
         GITHUB_TOKEN=<paste-your-token-here-0000>\n\
         SECRET_KEY=changeme-changeme-changeme-1234\n\
         TOKEN_URL=https://auth.example.com/oauth2/v1/token\n\
         password = \"at least twelve characters, please\"\n",
    );
    let run = run(&repo, &[]);
    assert_eq!(run.outcome(), "pass", "{:?}", findings(&run));
}

#[test]
fn only_added_lines_count() {
    // A secret already committed, or one being deleted, is not part of the change.
    let repo = Repo::new(&[
        ("old.env", &format!("KEY={}\n", aws_key())),
        ("gone.env", &format!("T={}\n", github_token())),
    ]);
    repo.write("old.env", &format!("KEY={}\nOTHER=1\n", aws_key()));
    repo.remove("gone.env");
    let run = run(&repo, &[]);
    assert_eq!(run.outcome(), "pass", "{:?}", findings(&run));
}

#[test]
fn a_repository_without_commits_works() {
    let repo = Repo::new(&[]);
    repo.write("clean.txt", "nothing to see\n");
    let run_clean = run(&repo, &[]);
    assert_eq!(run_clean.outcome(), "pass", "{} {:?}", run_clean.summary(), findings(&run_clean));

    repo.write("staged.env", &format!("A=1\nB=2\nAWS_KEY={}\n", aws_key()));
    repo.git(&["add", "staged.env"]);
    // Staged, then edited in the working tree: the line number is the working tree's.
    repo.write("staged.env", &format!("# header\nA=1\nB=2\nAWS_KEY={}\n", aws_key()));
    repo.write("untracked/key.pem", &format!("{}\n{}\n", private_key_header(), private_key_body()));
    let run = run(&repo, &[]);
    assert_eq!(run.outcome(), "fail", "{}", run.summary());
    let all = findings(&run);
    assert!(has_finding(&run, "staged.env", 4, "AWS access key id"), "{all:?}");
    assert!(has_finding(&run, "untracked/key.pem", 1, "private key"), "{all:?}");
    assert_eq!(all.len(), 2, "{all:?}");
    assert_not_leaked(&run, &aws_key());
}

#[test]
fn a_secret_only_in_the_index_is_found() {
    // Staged, then removed from the working tree without unstaging: a commit would include it.
    let repo = Repo::new(&[("app.cfg", "a = 1\n")]);
    repo.write("app.cfg", &format!("a = 1\nslack = {}-1234567890-{}\n", "xoxb", "AbCdEf123456"));
    repo.git(&["add", "app.cfg"]);
    repo.write("app.cfg", "a = 1\n");
    let run = run(&repo, &[]);
    assert_eq!(run.outcome(), "fail", "{}", run.summary());
    let all = findings(&run);
    assert!(has_finding(&run, "app.cfg", 2, "Slack token"), "{all:?}");
    assert!(all[0].2.contains("staged"), "{all:?}");
}

#[test]
fn exclude_skips_paths() {
    let repo = Repo::new(&[("README.md", "# demo\n")]);
    repo.write("tests/fixtures/creds.env", &format!("AWS={}\n", aws_key()));
    repo.write("vendor/lib/token.txt", &format!("{}\n", github_token()));
    repo.write("src/real.env", &format!("AWS={}\n", aws_key()));

    let run1 = run(&repo, &["--param", "exclude=[tests/fixtures/, 'vendor/*']"]);
    assert_eq!(run1.outcome(), "fail");
    let all = findings(&run1);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].0, "src/real.env");
    assert!(
        run1.evidence().contains("tests/fixtures/creds.env"),
        "excluded files are listed: {}",
        run1.evidence()
    );

    let run2 = run(&repo, &["--param", "exclude=['*.env', vendor]"]);
    assert_eq!(run2.outcome(), "pass", "{:?}", findings(&run2));
}

#[test]
fn binary_and_large_files_are_skipped_and_noted() {
    let repo = Repo::new(&[("README.md", "# demo\n")]);
    let mut binary = format!("KEY={}\n", aws_key()).into_bytes();
    binary.extend([0u8, 1, 2, 3]);
    std::fs::write(repo.path().join("blob.bin"), binary).unwrap();
    let mut large = "filler line\n".repeat(100_000);
    large.push_str(&format!("KEY={}\n", aws_key()));
    repo.write("big.log", &large);
    let run = run(&repo, &[]);
    assert_eq!(run.outcome(), "pass", "{:?}", findings(&run));
    assert!(run.summary().contains("2 files not scanned"), "{}", run.summary());
    let evidence = run.evidence();
    assert!(evidence.contains("blob.bin: binary"), "{evidence}");
    assert!(evidence.contains("big.log: larger than 1 MiB"), "{evidence}");
}

#[test]
fn gitignored_files_are_not_scanned() {
    let repo = Repo::new(&[(".gitignore", "local.env\n")]);
    repo.write("local.env", &format!("AWS={}\n", aws_key()));
    let run = run(&repo, &[]);
    assert_eq!(run.outcome(), "pass", "{:?}", findings(&run));
}

#[test]
fn a_workspace_inside_a_repository_sees_its_own_paths() {
    let repo = Repo::new(&[("app/main.txt", "x\n"), ("other/main.txt", "y\n")]);
    repo.write("app/main.txt", &format!("x\nkey {}\n", github_token()));
    repo.write("app/new/cfg.env", &format!("AWS={}\n", aws_key()));
    repo.write("other/main.txt", &format!("y\nkey {}\n", aws_key()));
    let cache = tempfile::tempdir().unwrap();
    let run = gate_run(cache.path(), "builtin:no-secrets", &repo.path().join("app"), &[]);
    assert_eq!(run.outcome(), "fail", "{} {}", run.summary(), run.stderr);
    let mut all = findings(&run);
    all.sort();
    assert_eq!(all.len(), 2, "only the workspace's files: {all:?}");
    assert_eq!((all[0].0.as_str(), all[0].1), ("main.txt", 2));
    assert_eq!((all[1].0.as_str(), all[1].1), ("new/cfg.env", 1));
}

#[test]
fn outside_a_repository_it_is_a_gate_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let run = gate_run(cache.path(), "builtin:no-secrets", dir.path(), &[]);
    assert_eq!((run.code, run.outcome()), (3, "error"), "{}", run.summary());
    assert!(run.summary().contains("git"), "{}", run.summary());
}
