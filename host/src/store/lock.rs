//! Whether a run's runner is alive: it holds an exclusive `flock` on `RUN_DIR/runner.lock` for
//! as long as it runs. The kernel drops the lock when the process dies, however it dies, so a
//! lock that can be taken means nobody is running the run — no pid guessing.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Held by the process running a run.
pub struct RunnerLock {
    _lock: Flock<File>,
}

impl RunnerLock {
    /// Take the lock of the run in `run_dir`: `Ok(None)` when another process holds it.
    pub fn try_acquire(run_dir: &Path) -> std::io::Result<Option<RunnerLock>> {
        std::fs::create_dir_all(run_dir)?;
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(lock_path(run_dir))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(RunnerLock { _lock: lock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(errno.into()),
        }
    }

    /// Whether some process is running the run in `run_dir` right now.
    pub fn is_held(run_dir: &Path) -> bool {
        let Ok(file) = OpenOptions::new().write(true).open(lock_path(run_dir)) else { return false };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(_released_on_drop) => false,
            Err((_, errno)) => errno == nix::errno::Errno::EWOULDBLOCK,
        }
    }
}

fn lock_path(run_dir: &Path) -> PathBuf {
    run_dir.join("runner.lock")
}
