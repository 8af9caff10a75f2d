//! The environment contract: what a step's process sees. Nothing is inherited wholesale.
//!
//! Every native step (a `run:` command or an agent) gets, in this order (later wins):
//! 1. the base set, copied from greenlight's own environment when set there: [`BASE`] and every
//!    `LC_*` variable — what programs need to find their tools, home, locale and proxies;
//! 2. for agents, the variables the agent lists under `env:`, by name (a listed variable that is
//!    not set stops the run before it starts: nothing is dropped silently);
//! 3. the step's own `env:` (rendered templates);
//! 4. greenlight's variables: `GREENLIGHT_RUN_ID`, `GREENLIGHT_RUN_DIR`, `GREENLIGHT_WORKSPACE`,
//!    `GREENLIGHT_STEP`, `GREENLIGHT_ATTEMPT`, the values the step's templates reference
//!    (`GREENLIGHT_VAR_<NAME>`, `GREENLIGHT_STEP_<NAME>_OUTPUT`, `..._EXIT_CODE`, see
//!    [`super::render::exports`]), and for agents `GREENLIGHT_TASK` (when it fits) and
//!    `GREENLIGHT_TASK_FILE`.
//!
//! Secrets (API keys, tokens) are never in the base set: an agent or step names the ones it needs.
//!
//! In an untrusted run (see [`super::policy`]) the base set has `HOME` and `TMPDIR` replaced by the
//! run's private temp dir (outside the workspace), and an agent's `env:` names are passed only
//! when granted with `--grant-env`.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

/// Copied from greenlight's environment when set.
pub const BASE: &[&str] = &[
    // identity, shell, terminal, locale, time
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    // where toolchains live
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOPATH",
    "GOROOT",
    "GOCACHE",
    "GOMODCACHE",
    "JAVA_HOME",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "NVM_DIR",
    "PYENV_ROOT",
    // network configuration (not credentials)
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    // tools behave differently in CI; steps should see the same
    "CI",
];

/// A step's environment being assembled; later settings replace earlier ones.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<OsString, OsString>,
}

impl Env {
    /// The base set, taken from `runner` (greenlight's own environment).
    pub fn base(runner: &[(OsString, OsString)]) -> Env {
        let vars = runner
            .iter()
            .filter(|(name, _)| is_base(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Env { vars }
    }

    pub fn set(&mut self, name: impl Into<OsString>, value: impl Into<OsString>) {
        self.vars.insert(name.into(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(OsStr::new(name)).map(OsString::as_os_str)
    }

    pub fn into_vec(self) -> Vec<(OsString, OsString)> {
        self.vars.into_iter().collect()
    }
}

fn is_base(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else { return false };
    BASE.contains(&name) || name.starts_with("LC_")
}

/// The value of `name` in `runner`, if set.
pub fn lookup<'a>(runner: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsStr> {
    runner.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_os_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner() -> Vec<(OsString, OsString)> {
        [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/u"),
            ("LC_ALL", "C"),
            ("ANTHROPIC_API_KEY", "sk-x"),
            ("FOO", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
    }

    #[test]
    fn the_base_set_has_tools_and_locale_but_no_secrets() {
        let env = Env::base(&runner());
        assert_eq!(env.get("PATH"), Some(OsStr::new("/usr/bin")));
        assert_eq!(env.get("LC_ALL"), Some(OsStr::new("C")));
        assert_eq!(env.get("ANTHROPIC_API_KEY"), None);
        assert_eq!(env.get("FOO"), None);
    }

    #[test]
    fn later_settings_win() {
        let mut env = Env::base(&runner());
        env.set("HOME", "/elsewhere");
        assert_eq!(env.get("HOME"), Some(OsStr::new("/elsewhere")));
        assert_eq!(lookup(&runner(), "FOO"), Some(OsStr::new("1")));
    }
}
