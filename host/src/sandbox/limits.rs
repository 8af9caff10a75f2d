//! The bounds every gate call runs within. A guest that reaches one is stopped and its call ends
//! in an `error` verdict that names the bound; the host carries on.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Wall clock for the whole call, host calls included.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Linear memory the component may hold, in bytes.
    pub memory: u64,
    /// Optional instruction budget (Wasmtime fuel).
    pub fuel: Option<u64>,
    /// Bytes kept of a process's stdout and of its stderr; more stops the process.
    pub process_output: usize,
    /// Bytes of log messages kept per call; later messages are counted, not kept.
    pub log_bytes: usize,
    /// Bytes the guest may write to its own stdout/stderr (shown when it crashes).
    pub console_bytes: usize,
    /// Largest verdict accepted (summary, findings and evidence together).
    pub verdict_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(60),
            memory: 256 << 20,
            fuel: None,
            process_output: 4 << 20,
            log_bytes: 64 << 10,
            console_bytes: 64 << 10,
            verdict_bytes: 1 << 20,
        }
    }
}

/// Memory (and table) growth policy for one store; remembers whether the cap was hit so the
/// resulting trap can be reported as "over the memory limit" rather than a bare trap.
pub struct MemoryCap {
    pub max_bytes: u64,
    pub hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.max_bytes {
            self.hit = true;
            return Err(wasmtime::format_err!(
                "memory limit exceeded: growing to {desired} bytes, the limit is {}",
                self.max_bytes
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any real gate.
        Ok(desired <= 1_000_000)
    }
}

mod humantime_serde_compat {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }
}
