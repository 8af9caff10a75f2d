//! The repository a run works in: snapshots of the working tree and the diffs between them,
//! protected files (captured, compared, put back), and commits of exactly the declared paths.
//!
//! This layer knows nothing of workflows, steps or the engine. Its APIs are synchronous: call
//! them from a blocking task.

pub mod git;
pub mod protect;

pub use git::{CommitError, Committed, Diff, Repo, Snapshot};
pub use protect::{Capture, ChangeKind, Protected, ProtectedChange};
