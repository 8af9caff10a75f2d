//! Confinement of native steps (shell commands and agent CLIs) for workflows that are not
//! trusted, applied to the child between `fork` and `exec`:
//!
//! - **Filesystem** ([Landlock]): writes only beneath [`Confinement::writable`] (the workspace,
//!   the step's private temp dir, granted paths) and to `/dev/null`. Everything else can be read
//!   and executed, except beneath [`Confinement::hidden`] (the home directories), where only
//!   [`Confinement::readable`] and [`Confinement::writable`] paths stay visible. Landlock only
//!   allows, so "everything except the hidden trees" is spelled out by [`readable_roots`].
//! - **Signals and abstract unix sockets** (Landlock scoping, ABI 6): a confined step cannot
//!   signal, or connect to an abstract socket of, a process outside its domain.
//! - **Network**: unless [`Confinement::network`] is granted, the child gets a network namespace
//!   of its own, holding only a loopback interface that is down, and on Landlock ABI 4 and later
//!   TCP `bind`/`connect` are denied as well.
//! - **Read-only paths inside writable trees** (a private mount namespace): Landlock cannot carve
//!   a subtree out of an allowed tree, so each [`Confinement::read_only`] path (the workspace's
//!   `.git`, greenlight's `.greenlight`) is bind-mounted onto itself read-only in a mount namespace
//!   of the child's own; writes there fail with `EROFS`. Writable paths inside a read-only path
//!   (the run's temp dir beneath `.greenlight`) are bound writable again on top. The host's mounts
//!   are made private first, so nothing propagates back; the mounts are made before the Landlock
//!   domain, which then forbids the step to undo them.
//!
//! [`Confinement::prepare`] does everything that allocates or opens files, in the parent;
//! [`PreparedConfinement::apply_in_child`] only makes system calls, so it may run in `pre_exec`.
//!
//! [Landlock]: https://docs.kernel.org/userspace-api/landlock.html

use std::collections::BTreeSet;
use std::ffi::{CStr, CString, OsStr};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreated, RulesetCreatedAttr, Scope,
};

/// The environment variable that switches Landlock off as far as greenlight can tell: when it is
/// `off`, [`support`] reports Landlock as unavailable and [`Confinement::prepare`] refuses, as on a
/// kernel without Landlock. Meant for testing how untrusted workflows are refused.
pub const LANDLOCK_SWITCH: &str = "GREENLIGHT_LANDLOCK";

/// What a confined step may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    /// Read, written and executed beneath: the workspace, the step's private temp dir, granted
    /// paths. Each must exist.
    pub writable: Vec<PathBuf>,
    /// Read and executed beneath even inside a hidden tree: granted read paths and the
    /// directories of granted programs. Each must exist.
    pub readable: Vec<PathBuf>,
    /// Trees that cannot be read, listed, written or executed from (the home directories), except
    /// for the `readable` and `writable` paths inside them. Paths that do not exist are ignored.
    pub hidden: Vec<PathBuf>,
    /// Whether the step keeps the host's network. Without it the step has a private network
    /// namespace with no usable interface.
    pub network: bool,
    /// Existing paths, typically inside a `writable` tree, that the step may read but not change
    /// (a private mount namespace binds each onto itself read-only). `writable` paths inside one
    /// of them stay writable. Each must exist and be absolute.
    pub read_only: Vec<PathBuf>,
}

impl Confinement {
    /// The home directories: `$HOME`, `/root` and `/home`.
    pub fn default_hidden() -> Vec<PathBuf> {
        let mut hidden: Vec<PathBuf> = dirs::home_dir().into_iter().collect();
        for dir in ["/root", "/home"] {
            if !hidden.iter().any(|h| h == Path::new(dir)) {
                hidden.push(dir.into());
            }
        }
        hidden
    }

    /// Opens the paths and builds everything the child needs. Errors when Landlock is unavailable,
    /// when a private network or mount namespace is needed and cannot be created, or when a
    /// `writable`, `readable` or `read_only` path cannot be opened (the error names it).
    pub fn prepare(&self) -> io::Result<PreparedConfinement> {
        let unsupported = |what: &str, support: Support| {
            io::Error::new(io::ErrorKind::Unsupported, format!("cannot confine the step{what}: {support}"))
        };
        let Some(abi) = landlock_abi() else {
            return Err(unsupported("", Support { landlock_abi: None, netns: true, mountns: true }));
        };
        if !self.network && !netns_available() {
            let support = Support { landlock_abi: Some(abi), netns: false, mountns: true };
            return Err(unsupported(" without network", support));
        }
        if !self.read_only.is_empty() && !mountns_available() {
            let support = Support { landlock_abi: Some(abi), netns: true, mountns: false };
            return Err(unsupported(" with read-only paths", support));
        }
        self.prepare_for(ABI::from(abi))
    }

    fn prepare_for(&self, abi: ABI) -> io::Result<PreparedConfinement> {
        let landlock_error = |what: &str, e: landlock::RulesetError| {
            io::Error::other(format!("Landlock refused the {what}: {e}"))
        };
        let all = AccessFs::from_all(abi);
        let read = AccessFs::from_read(abi);

        // Computed from the running kernel's ABI, so every requested right is supported: any
        // mismatch is a bug and must fail loudly rather than confine less.
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(all)
            .map_err(|e| landlock_error("filesystem rights", e))?;
        if abi >= ABI::V6 {
            ruleset = ruleset.scope(Scope::from_all(abi)).map_err(|e| landlock_error("scopes", e))?;
        }
        if !self.network && abi >= ABI::V4 {
            ruleset = ruleset
                .handle_access(AccessNet::from_all(abi))
                .map_err(|e| landlock_error("network rights", e))?;
        }
        let mut ruleset = ruleset.create().map_err(|e| landlock_error("ruleset", e))?;

        for path in &self.writable {
            ruleset = add_path(ruleset, path, all, abi).map_err(|e| named(e, "writable", path))?;
        }
        if Path::new(DEV_NULL).exists() {
            ruleset = add_path(ruleset, Path::new(DEV_NULL), all, abi)
                .map_err(|e| named(e, "writable", DEV_NULL))?;
        }
        for path in &self.readable {
            ruleset = add_path(ruleset, path, read, abi).map_err(|e| named(e, "readable", path))?;
        }
        for path in readable_roots(&self.hidden, &[]) {
            // Entries found by listing directories may vanish or be unopenable (a socket, a stale
            // mount): what cannot be opened stays unreadable.
            ruleset = match add_path(ruleset, &path, read, abi) {
                Ok(ruleset) => ruleset,
                Err(AddPathError::Open(_, ruleset)) => *ruleset,
                Err(e) => return Err(named(e, "readable", &path)),
            };
        }

        let mounts = self.mount_plan()?;
        let fd: Option<OwnedFd> = ruleset.into();
        let ruleset = fd.ok_or_else(|| io::Error::other("Landlock did not create a ruleset"))?;
        Ok(PreparedConfinement { ruleset, network: self.network, mounts })
    }

    /// The bind mounts that make the `read_only` paths read-only and the `writable` paths inside
    /// them writable again, outer paths first.
    fn mount_plan(&self) -> io::Result<Vec<BindMount>> {
        let mut plan: Vec<(usize, BindMount)> = Vec::new();
        for path in &self.read_only {
            plan.push((depth(path), BindMount::new(path, true).map_err(|e| named_io(e, "read-only", path))?));
        }
        for path in &self.writable {
            if self.read_only.iter().any(|r| path.starts_with(r) && path != r) {
                plan.push((
                    depth(path),
                    BindMount::new(path, false).map_err(|e| named_io(e, "writable", path))?,
                ));
            }
        }
        // Stable: a path listed twice is bound twice, in the order given.
        plan.sort_by_key(|(depth, _)| *depth);
        Ok(plan.into_iter().map(|(_, mount)| mount).collect())
    }
}

fn depth(path: &Path) -> usize {
    path.components().count()
}

fn named_io(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot prepare {what} path {}: {e}", path.display()))
}

/// A path the child binds onto itself in its mount namespace, then remounts read-only or
/// writable.
#[derive(Debug)]
struct BindMount {
    path: CString,
    /// `MS_REMOUNT | MS_BIND`, `MS_RDONLY` for a read-only path, and the flags of the mount the
    /// path lies on that a user namespace locks (`nosuid`, `nodev`, `noexec`, the atime mode): a
    /// remount that would clear one fails with `EPERM`.
    remount: libc::c_ulong,
}

impl BindMount {
    fn new(path: &Path, read_only: bool) -> io::Result<BindMount> {
        use nix::sys::statvfs::{FsFlags, statvfs};
        use std::os::unix::ffi::OsStrExt;
        if !path.is_absolute() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the path is not absolute"));
        }
        let flags = statvfs(path).map_err(io::Error::from)?.flags();
        let mut remount = libc::MS_REMOUNT | libc::MS_BIND;
        for (st, ms) in [
            (FsFlags::ST_RDONLY, libc::MS_RDONLY),
            (FsFlags::ST_NOSUID, libc::MS_NOSUID),
            (FsFlags::ST_NODEV, libc::MS_NODEV),
            (FsFlags::ST_NOEXEC, libc::MS_NOEXEC),
            (FsFlags::ST_NOATIME, libc::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, libc::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, libc::MS_RELATIME),
        ] {
            if flags.contains(st) {
                remount |= ms;
            }
        }
        if read_only {
            remount |= libc::MS_RDONLY;
        }
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path holds a NUL byte"))?;
        Ok(BindMount { path, remount })
    }
}

const DEV_NULL: &str = "/dev/null";

enum AddPathError {
    /// The path could not be opened; the ruleset is handed back unchanged.
    Open(io::Error, Box<RulesetCreated>),
    Rule(landlock::RulesetError),
}

fn named(error: AddPathError, what: &str, path: impl AsRef<Path>) -> io::Error {
    let path = path.as_ref().display();
    match error {
        AddPathError::Open(e, _) => io::Error::new(e.kind(), format!("cannot open {what} path {path}: {e}")),
        AddPathError::Rule(e) => {
            io::Error::other(format!("Landlock refused the rule for {what} path {path}: {e}"))
        }
    }
}

/// Allows `access` beneath `path`, narrowed to the rights that apply to a file when it is not a
/// directory.
fn add_path(
    ruleset: RulesetCreated,
    path: &Path,
    access: BitFlags<AccessFs>,
    abi: ABI,
) -> Result<RulesetCreated, AddPathError> {
    let fd = match PathFd::new(path) {
        Ok(fd) => fd,
        Err(landlock::PathFdError::OpenCall { source, .. }) => {
            return Err(AddPathError::Open(source, Box::new(ruleset)));
        }
        Err(e) => return Err(AddPathError::Open(io::Error::other(e), Box::new(ruleset))),
    };
    let is_dir = std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    let access = if is_dir { access } else { access & AccessFs::from_file(abi) };
    ruleset.add_rule(PathBeneath::new(fd, access)).map_err(AddPathError::Rule)
}

/// Everything a confined child needs, ready to apply between `fork` and `exec`.
#[derive(Debug)]
pub struct PreparedConfinement {
    /// The Landlock ruleset, rules added (close-on-exec, so the step never sees it).
    ruleset: OwnedFd,
    network: bool,
    /// In the order they are made; empty: no mount namespace.
    mounts: Vec<BindMount>,
}

impl PreparedConfinement {
    /// Confines the calling process: a private network namespace unless network is granted, a
    /// private mount namespace with the read-only binds when there are read-only paths, then
    /// `no_new_privs` and the Landlock domain. Async-signal-safe (system calls only, nothing
    /// allocated), so it can run in `pre_exec`. Errors are the failing call's `errno`.
    pub fn apply_in_child(&self) -> io::Result<()> {
        let mut namespaces = 0;
        if !self.network {
            namespaces |= libc::CLONE_NEWNET;
        }
        if !self.mounts.is_empty() {
            namespaces |= libc::CLONE_NEWNS;
        }
        if namespaces != 0 {
            enter_namespaces(namespaces)?;
        }
        if !self.mounts.is_empty() {
            bind_mounts(&self.mounts)?;
        }
        // SAFETY: plain system calls on integers and a file descriptor we own.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_landlock_restrict_self, self.ruleset.as_raw_fd(), 0) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Moves the calling process into new `namespaces` (`CLONE_NEWNET`, `CLONE_NEWNS`): directly
/// with `CAP_SYS_ADMIN`, otherwise together with a new user namespace that maps the caller's own
/// uid and gid to themselves (so files keep their owners). Async-signal-safe.
fn enter_namespaces(namespaces: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare only takes flags; the id-map writes use stack buffers and static paths.
    unsafe {
        if libc::unshare(namespaces) == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EPERM) {
            return Err(error);
        }
        let (uid, gid) = (libc::geteuid(), libc::getegid());
        if libc::unshare(libc::CLONE_NEWUSER | namespaces) != 0 {
            return Err(io::Error::last_os_error());
        }
        // A process that changed its ids before (`Command::uid`) is not dumpable, which makes its
        // /proc/self files root's; it must own them to write its maps. Exec resets the flag.
        if libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) != 1
            && libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) != 0
        {
            return Err(io::Error::last_os_error());
        }
        write_proc(c"/proc/self/setgroups", b"deny")?;
        let mut buf = [0u8; ID_MAP_LEN];
        write_proc(c"/proc/self/uid_map", id_map(&mut buf, uid))?;
        write_proc(c"/proc/self/gid_map", id_map(&mut buf, gid))?;
    }
    Ok(())
}

/// In a fresh mount namespace: makes every mount private (so nothing made here reaches the
/// host's namespace), then binds each path onto itself and remounts it with its flags. Binding
/// leaves a working directory inside one of the paths on the mount below (where it could still
/// write), so the process then changes to its working directory again by name. Async-signal-safe.
fn bind_mounts(mounts: &[BindMount]) -> io::Result<()> {
    let mut cwd = [0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: the buffers outlive the calls and every path is NUL-terminated; the getcwd system
    // call (not libc's, which may allocate) writes at most `cwd.len()` bytes, NUL included.
    unsafe {
        let len = libc::syscall(libc::SYS_getcwd, cwd.as_mut_ptr(), cwd.len());
        // An unreachable working directory reads "(unreachable)/...": no name to come back by.
        if len < 0 {
            return Err(io::Error::last_os_error());
        } else if len < 2 || cwd[0] != b'/' {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let cwd_bytes = &cwd[..len as usize - 1];
        let none = std::ptr::null::<libc::c_char>();
        if libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
            return Err(io::Error::last_os_error());
        }
        for mount in mounts {
            let path = mount.path.as_ptr();
            if libc::mount(path, path, none, libc::MS_BIND | libc::MS_REC, std::ptr::null()) != 0
                || libc::mount(none, path, none, mount.remount, std::ptr::null()) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        let covered = mounts.iter().any(|m| is_beneath(cwd_bytes, m.path.as_bytes()));
        if covered && libc::chdir(cwd.as_ptr().cast()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether `path` is `dir` or lies beneath it (both absolute, as bytes). No allocation.
fn is_beneath(path: &[u8], dir: &[u8]) -> bool {
    let dir = dir.strip_suffix(b"/").unwrap_or(dir);
    path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/')
}

const ID_MAP_LEN: usize = 3 * 10 + 2;

/// `"ID ID 1"`: `id` inside the namespace is `id` outside it, one id long. No allocation.
fn id_map(buf: &mut [u8; ID_MAP_LEN], id: u32) -> &[u8] {
    fn decimal(buf: &mut [u8], mut at: usize, mut n: u32) -> usize {
        let mut digits = [0u8; 10];
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        while len > 0 {
            len -= 1;
            buf[at] = digits[len];
            at += 1;
        }
        at
    }
    let mut at = decimal(buf, 0, id);
    buf[at] = b' ';
    at = decimal(buf, at + 1, id);
    buf[at] = b' ';
    buf[at + 1] = b'1';
    &buf[..at + 2]
}

/// Writes `data` to a `/proc` file in one `write`. Async-signal-safe.
fn write_proc(path: &CStr, data: &[u8]) -> io::Result<()> {
    // SAFETY: `path` is NUL-terminated and `data` outlives the call; the fd is closed on every path.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, data.as_ptr().cast(), data.len());
        let error = io::Error::last_os_error();
        libc::close(fd);
        if written != data.len() as isize {
            return Err(if written < 0 { error } else { io::Error::from_raw_os_error(libc::EIO) });
        }
    }
    Ok(())
}

/// The roots to allow reading beneath so that everything is readable except the `hidden` trees,
/// plus `extra_readable`. Walks from `/` down each path to a hidden tree and lists, at every
/// directory on the way, the entries that are neither hidden nor on the way to a hidden tree.
/// Symbolic links among them are left out: what they point to is allowed (or not) under its
/// own path, and following one could lead into a hidden tree.
///
/// Hidden paths are resolved first (so `/home -> /var/home` hides `/var/home`); those that do not
/// exist are ignored. With nothing to hide the answer is `/`; with `/` hidden it is only
/// `extra_readable`. The directories on the way themselves are not readable (listing `/` fails).
pub fn readable_roots(hidden: &[PathBuf], extra_readable: &[PathBuf]) -> Vec<PathBuf> {
    let hidden: BTreeSet<PathBuf> = hidden.iter().filter_map(|h| std::fs::canonicalize(h).ok()).collect();
    let on_the_way: BTreeSet<&Path> = hidden.iter().flat_map(|h| h.ancestors().skip(1)).collect();
    let mut roots = Vec::new();
    if hidden.is_empty() {
        roots.push(PathBuf::from("/"));
    }
    for dir in &on_the_way {
        if hidden.iter().any(|h| dir.starts_with(h)) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let symlink = entry.file_type().is_ok_and(|t| t.is_symlink());
            if !symlink && !hidden.contains(&path) && !on_the_way.contains(path.as_path()) {
                roots.push(path);
            }
        }
    }
    for extra in extra_readable {
        if !roots.contains(extra) {
            roots.push(extra.clone());
        }
    }
    roots
}

/// What this machine offers for confinement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// The kernel's Landlock ABI version; `None` when the kernel lacks Landlock, it is not enabled,
    /// or `GREENLIGHT_LANDLOCK=off`.
    pub landlock_abi: Option<i32>,
    /// Whether a private network namespace can be created (with `CAP_SYS_ADMIN` or through an
    /// unprivileged user namespace).
    pub netns: bool,
    /// Whether a private mount namespace can be created and paths bound read-only in it (what
    /// keeps steps from changing [`Confinement::read_only`] paths inside their writable trees).
    pub mountns: bool,
}

/// Reports the kernel's Landlock ABI and whether private network and mount namespaces can be
/// created (by trying each once in a forked child; the answers are remembered).
pub fn support() -> Support {
    Support { landlock_abi: landlock_abi(), netns: netns_available(), mountns: mountns_available() }
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.landlock_abi {
            Some(abi) => write!(f, "Landlock ABI {abi} is available")?,
            None => write!(
                f,
                "Landlock is unavailable (the kernel lacks it, it is not in the kernel's `lsm=` list, or \
                 {LANDLOCK_SWITCH}=off): native steps cannot be confined to the workspace"
            )?,
        }
        if self.netns {
            write!(f, "; private network namespaces can be created")?;
        } else {
            write!(
                f,
                "; private network namespaces cannot be created (no CAP_SYS_ADMIN and unprivileged user \
                 namespaces are disabled): steps cannot be cut off from the network"
            )?;
        }
        if self.mountns {
            write!(f, "; private mount namespaces can be created")
        } else {
            write!(
                f,
                "; private mount namespaces with read-only bind mounts cannot be created (no CAP_SYS_ADMIN \
                 and unprivileged user namespaces are disabled, or mounts are refused): steps cannot be \
                 kept from changing the workspace's .git and greenlight's run store"
            )
        }
    }
}

fn landlock_abi() -> Option<i32> {
    landlock_abi_with(std::env::var_os(LANDLOCK_SWITCH).as_deref())
}

fn landlock_abi_with(switch: Option<&OsStr>) -> Option<i32> {
    if switch == Some(OsStr::new("off")) {
        return None;
    }
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute and size 0, the call only returns the ABI version.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (abi > 0).then_some(abi as i32)
}

fn netns_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| succeeds_in_a_child(|| enter_namespaces(libc::CLONE_NEWNET)))
}

/// Tries what a step with read-only paths does: a private mount namespace in which `/` is bound
/// onto itself and remounted read-only.
fn mountns_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let Ok(root) = BindMount::new(Path::new("/"), true) else { return false };
        let mounts = [root];
        succeeds_in_a_child(|| {
            enter_namespaces(libc::CLONE_NEWNS)?;
            bind_mounts(&mounts)
        })
    })
}

/// Runs `probe` in a forked child; whether it succeeded. `probe` must be async-signal-safe.
fn succeeds_in_a_child(probe: impl Fn() -> io::Result<()>) -> bool {
    // SAFETY: the child only runs the async-signal-safe probe and leaves with `_exit`.
    unsafe {
        match libc::fork() {
            -1 => false,
            0 => libc::_exit(if probe().is_ok() { 0 } else { 1 }),
            pid => {
                let mut status = 0;
                while libc::waitpid(pid, &mut status, 0) < 0 {
                    if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                        return false;
                    }
                }
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Output};
    use std::sync::Arc;

    /// Whether Landlock is here; says why the test does not run when it is not.
    fn landlock_here(test: &str) -> bool {
        let support = support();
        if support.landlock_abi.is_none() {
            eprintln!("SKIPPED {test}: {support}");
        }
        support.landlock_abi.is_some()
    }

    fn confined(confinement: &Confinement, program: &str, script: &str) -> Command {
        let prepared = Arc::new(confinement.prepare().expect("prepare"));
        let mut command = Command::new(program);
        command.args(["-c", script]);
        // SAFETY: apply_in_child only makes system calls.
        unsafe {
            command.pre_exec(move || prepared.apply_in_child());
        }
        command
    }

    fn run(confinement: &Confinement, script: &str) -> Output {
        confined(confinement, "/bin/sh", script).output().expect("spawn")
    }

    struct Scene {
        _dir: tempfile::TempDir,
        root: PathBuf,
        workspace: PathBuf,
        home: PathBuf,
    }

    /// A workspace and a home holding `.ssh/id_rsa` and a `project/README` side by side.
    fn scene() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let workspace = root.join("workspace");
        let home = root.join("home");
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::create_dir_all(home.join("project")).unwrap();
        std::fs::write(home.join(".ssh/id_rsa"), "SECRET KEY").unwrap();
        std::fs::write(home.join("project/README"), "visible").unwrap();
        Scene { _dir: dir, root, workspace, home }
    }

    fn stdout(output: &Output) -> String {
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    #[test]
    fn writes_land_only_inside_the_writable_dirs() {
        if !landlock_here("writes_land_only_inside_the_writable_dirs") {
            return;
        }
        let scene = scene();
        let outside = scene.root.join("OUTSIDE");
        let inside = scene.workspace.join("inside");
        let confinement =
            Confinement { writable: vec![scene.workspace.clone()], network: true, ..Default::default() };

        let refused = run(&confinement, &format!("echo x > {}", outside.display()));
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("Permission denied"), "{refused:?}");
        assert!(!outside.exists(), "a confined step wrote outside its writable dirs");

        let allowed =
            run(&confinement, &format!("echo y > {0} && cat {0} && echo z > /dev/null", inside.display()));
        assert!(allowed.status.success(), "{allowed:?}");
        assert_eq!(stdout(&allowed), "y\n");
        assert_eq!(std::fs::read_to_string(&inside).unwrap(), "y\n");
    }

    #[test]
    fn hidden_trees_cannot_be_read_but_their_readable_dirs_can() {
        if !landlock_here("hidden_trees_cannot_be_read_but_their_readable_dirs_can") {
            return;
        }
        let scene = scene();
        let confinement = Confinement {
            writable: vec![scene.workspace.clone()],
            readable: vec![scene.home.join("project")],
            hidden: vec![scene.home.clone(), "/root".into()],
            network: true,
            ..Default::default()
        };

        let key = run(&confinement, &format!("cat {}", scene.home.join(".ssh/id_rsa").display()));
        assert!(!key.status.success(), "{key:?}");
        assert!(!stdout(&key).contains("SECRET"));
        let listing = run(&confinement, &format!("ls -a {}", scene.home.display()));
        assert!(!listing.status.success(), "the hidden home could be listed: {listing:?}");
        if Path::new("/root").is_dir() {
            let root_home = run(&confinement, "ls -a /root");
            assert!(!root_home.status.success(), "/root could be listed: {root_home:?}");
        }

        let system = run(&confinement, "cat /etc/passwd >/dev/null && ls /usr/bin >/dev/null && echo ok");
        assert_eq!(stdout(&system), "ok\n", "{system:?}");
        if Path::new("/etc/hostname").exists() {
            assert!(run(&confinement, "cat /etc/hostname").status.success());
        }
        let project = run(&confinement, &format!("cat {}", scene.home.join("project/README").display()));
        assert_eq!(stdout(&project), "visible", "{project:?}");
    }

    #[test]
    fn rm_rf_of_the_hidden_home_leaves_it_intact() {
        if !landlock_here("rm_rf_of_the_hidden_home_leaves_it_intact") {
            return;
        }
        let scene = scene();
        let confinement = Confinement {
            writable: vec![scene.workspace.clone()],
            hidden: vec![scene.home.clone()],
            network: true,
            ..Default::default()
        };
        let removal = run(&confinement, &format!("rm -rf {}", scene.home.display()));
        assert!(!removal.status.success(), "{removal:?}");
        assert_eq!(std::fs::read_to_string(scene.home.join(".ssh/id_rsa")).unwrap(), "SECRET KEY");
        assert!(scene.home.join("project/README").exists());
    }

    /// Runs bash's `/dev/tcp` connect to `port`; true when it connected.
    fn connects(confinement: &Confinement, port: u16) -> Output {
        let bash = which::which("bash").expect("bash is needed for /dev/tcp");
        confined(
            confinement,
            bash.to_str().unwrap(),
            &format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"),
        )
        .output()
        .expect("spawn")
    }

    #[test]
    fn without_network_the_step_cannot_reach_a_local_listener() {
        if !landlock_here("without_network_the_step_cannot_reach_a_local_listener") {
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let scene = scene();

        let offline =
            Confinement { writable: vec![scene.workspace.clone()], network: false, ..Default::default() };
        let refused = connects(&offline, port);
        assert!(!refused.status.success(), "connected without network: {refused:?}");
        let interfaces = run(&offline, "cat /proc/net/dev");
        let names: Vec<&str> = std::str::from_utf8(&interfaces.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| Some(line.split_once(':')?.0.trim()))
            .collect();
        assert_eq!(names, ["lo"], "the step is not in a network namespace of its own");

        let online = Confinement { network: true, ..offline };
        let connected = connects(&online, port);
        assert_eq!(stdout(&connected), "connected\n", "{connected:?}");
    }

    /// As root the namespace comes from CAP_SYS_ADMIN; a child that drops to an unprivileged id
    /// first takes the other road (a user namespace mapping its own ids) and keeps its identity:
    /// an unmapped id would show as 65534.
    #[test]
    fn an_unprivileged_child_gets_its_namespace_through_a_user_namespace() {
        if !landlock_here("an_unprivileged_child_gets_its_namespace_through_a_user_namespace") {
            return;
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!(
                "SKIPPED dropping to another uid needs root; the other network test takes this road as is"
            );
            return;
        }
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let scene = scene();
        for dir in [&scene.root, &scene.workspace] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let confinement = Confinement {
            writable: vec![scene.workspace.clone()],
            hidden: vec![scene.home.clone()],
            network: false,
            ..Default::default()
        };
        let made = scene.workspace.join("made");
        let script =
            format!("id -u; touch {}; exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected", made.display());
        let output = confined(&confinement, which::which("bash").unwrap().to_str().unwrap(), &script)
            .uid(4242)
            .gid(4242)
            .output()
            .unwrap();
        assert_eq!(stdout(&output), "4242\n", "{output:?}");
        assert_eq!(std::fs::metadata(&made).unwrap().uid(), 4242);
        assert!(!output.status.success());
    }

    #[test]
    fn readable_roots_list_everything_but_the_way_to_hidden_trees() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for sub in ["a/b/c/x", "a/b/d", "a/e"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::write(root.join("f"), "").unwrap();
        std::os::unix::fs::symlink(root.join("a/b/c"), root.join("link")).unwrap();
        let hidden = root.join("a/b/c");
        let extra = hidden.join("x");

        let roots = readable_roots(&[hidden.clone(), root.join("missing")], std::slice::from_ref(&extra));

        for expected in [root.join("a/b/d"), root.join("a/e"), root.join("f"), extra.clone(), "/usr".into()] {
            assert!(roots.contains(&expected), "{expected:?} missing from {roots:?}");
        }
        for path in &roots {
            if path != &extra {
                assert!(
                    !path.starts_with(&hidden) && !hidden.starts_with(path),
                    "{path:?} exposes {hidden:?}"
                );
            }
        }
        assert!(!roots.contains(&root.join("link")), "a symlink into the hidden tree was allowed");
    }

    #[test]
    fn readable_roots_without_hidden_trees_is_everything_and_with_root_hidden_only_the_extras() {
        assert_eq!(readable_roots(&[], &[]), vec![PathBuf::from("/")]);
        assert_eq!(readable_roots(&["/nonexistent/home".into()], &[]), vec![PathBuf::from("/")]);
        assert_eq!(readable_roots(&["/".into()], &["/usr".into()]), vec![PathBuf::from("/usr")]);
    }

    #[test]
    fn prepare_names_the_path_it_cannot_open() {
        if !landlock_here("prepare_names_the_path_it_cannot_open") {
            return;
        }
        let confinement = Confinement {
            writable: vec!["/nonexistent/workspace".into()],
            network: true,
            ..Default::default()
        };
        let error = confinement.prepare().unwrap_err().to_string();
        assert!(error.contains("writable path /nonexistent/workspace"), "{error}");
    }

    #[test]
    fn the_switch_turns_landlock_off_and_support_says_what_is_missing() {
        assert_eq!(landlock_abi_with(Some(OsStr::new("off"))), None);
        let missing = Support { landlock_abi: None, netns: false, mountns: false }.to_string();
        assert!(missing.contains("Landlock is unavailable") && missing.contains("GREENLIGHT_LANDLOCK=off"));
        assert!(missing.contains("cannot be cut off from the network"), "{missing}");
        assert!(missing.contains("cannot be kept from changing the workspace's .git"), "{missing}");
        let all = Support { landlock_abi: Some(7), netns: true, mountns: true }.to_string();
        assert_eq!(
            all,
            "Landlock ABI 7 is available; private network namespaces can be created; private mount \
             namespaces can be created"
        );
    }

    /// A workspace as an untrusted run leaves it to a step: `.git` with a config and a hook
    /// folder, `.greenlight` with the run store and the run's temp dir, and the step's
    /// confinement: the workspace and the temp dir writable, `.git` and `.greenlight` read-only.
    struct Guarded {
        scene: Scene,
        git: PathBuf,
        greenlight: PathBuf,
        tmp: PathBuf,
        confinement: Confinement,
    }

    fn guarded(network: bool) -> Guarded {
        let scene = scene();
        let git = scene.workspace.join(".git");
        let greenlight = scene.workspace.join(".greenlight");
        let tmp = greenlight.join("runs/r/tmp");
        std::fs::create_dir_all(git.join("hooks")).unwrap();
        std::fs::write(git.join("config"), "[core]\n").unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(greenlight.join("runs.db"), "STORE").unwrap();
        let confinement = Confinement {
            writable: vec![scene.workspace.clone(), tmp.clone()],
            read_only: vec![git.clone(), greenlight.clone()],
            network,
            ..Default::default()
        };
        Guarded { scene, git, greenlight, tmp, confinement }
    }

    /// A script that tries each write and prints `ok NAME` or `refused NAME` for it.
    fn attempts(writes: &[(&str, String)]) -> String {
        writes
            .iter()
            .map(|(name, write)| format!("if {write}; then echo ok {name}; else echo refused {name}; fi\n"))
            .collect()
    }

    /// The writes a hostile step would make, as (name, shell command) pairs, run from the
    /// workspace.
    fn hostile_writes(g: &Guarded) -> Vec<(&'static str, String)> {
        let ws = g.scene.workspace.display();
        vec![
            ("file", format!("echo new > {ws}/new.txt")),
            ("hook", "echo evil > .git/hooks/pre-commit".into()),
            ("config", "echo '[core] fsmonitor = evil' >> .git/config".into()),
            ("store", "echo x >> .greenlight/runs.db".into()),
            ("store-rm", "rm -f .greenlight/runs.db".into()),
            ("git-mv", "mv .git git-aside".into()),
            ("tmp", format!("echo t > {}/x", g.tmp.display())),
        ]
    }

    fn mount_points() -> Vec<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        info.lines().filter_map(|line| line.split(' ').nth(4).map(str::to_string)).collect()
    }

    fn assert_guarded_after(g: &Guarded, output: &Output, uid: Option<u32>) {
        let expected = "ok file\nrefused hook\nrefused config\nrefused store\nrefused store-rm\nrefused git-mv\nok tmp\n";
        assert_eq!(stdout(output), expected, "{output:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("Read-only file system"), "{output:?}");
        assert_eq!(std::fs::read_to_string(g.scene.workspace.join("new.txt")).unwrap(), "new\n");
        assert_eq!(std::fs::read_to_string(g.tmp.join("x")).unwrap(), "t\n");
        if let Some(uid) = uid {
            use std::os::unix::fs::MetadataExt;
            assert_eq!(std::fs::metadata(g.tmp.join("x")).unwrap().uid(), uid);
        }
        assert!(!g.git.join("hooks/pre-commit").exists(), "a hook was planted");
        assert_eq!(std::fs::read_to_string(g.git.join("config")).unwrap(), "[core]\n");
        assert_eq!(std::fs::read_to_string(g.greenlight.join("runs.db")).unwrap(), "STORE");
        assert!(!g.scene.workspace.join("git-aside").exists());
        // The binds were made in the child's namespace only: the host sees no mount there.
        let mounts = mount_points();
        for path in [&g.git, &g.greenlight, &g.tmp] {
            assert!(!mounts.iter().any(|m| Path::new(m) == path.as_path()), "{path:?} leaked: {mounts:?}");
        }
    }

    #[test]
    fn read_only_paths_in_the_workspace_cannot_be_changed_and_the_temp_dir_within_stays_writable() {
        if !landlock_here("read_only_paths_in_the_workspace_cannot_be_changed") {
            return;
        }
        for network in [true, false] {
            let g = guarded(network);
            let script = attempts(&hostile_writes(&g));
            let output = confined(&g.confinement, "/bin/sh", &script)
                .current_dir(&g.scene.workspace)
                .output()
                .unwrap();
            assert_guarded_after(&g, &output, None);
        }
    }

    /// A step whose working directory is inside a read-only path (`cwd: .git`) writes through
    /// the read-only bind too, not through the mount below it.
    #[test]
    fn a_working_directory_inside_a_read_only_path_is_read_only_too() {
        if !landlock_here("a_working_directory_inside_a_read_only_path_is_read_only_too") {
            return;
        }
        let g = guarded(true);
        let script = attempts(&[
            ("hook", "echo evil > hooks/pre-commit".into()),
            ("config", "echo x >> config".into()),
        ]);
        let output = confined(&g.confinement, "/bin/sh", &script).current_dir(&g.git).output().unwrap();
        assert_eq!(stdout(&output), "refused hook\nrefused config\n", "{output:?}");
        assert!(!g.git.join("hooks/pre-commit").exists());
        assert_eq!(std::fs::read_to_string(g.git.join("config")).unwrap(), "[core]\n");
    }

    /// The same protections for a child that is not root: the mount namespace then comes with a
    /// user namespace mapping its own ids (together with the network namespace when the network
    /// is off). Everything is world-writable here, so only the read-only binds refuse.
    #[test]
    fn an_unprivileged_child_gets_its_read_only_paths_through_a_user_namespace() {
        if !landlock_here("an_unprivileged_child_gets_its_read_only_paths_through_a_user_namespace") {
            return;
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!(
                "SKIPPED dropping to another uid needs root; the other read-only test takes this road as is"
            );
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        for network in [true, false] {
            let g = guarded(network);
            let open = |path: &Path, mode| {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
            };
            for dir in
                [&g.scene.root, &g.scene.workspace, &g.git, &g.git.join("hooks"), &g.greenlight, &g.tmp]
            {
                open(dir, 0o777);
            }
            open(&g.git.join("config"), 0o666);
            open(&g.greenlight.join("runs.db"), 0o666);
            let script = format!("{}id -u >&2\n", attempts(&hostile_writes(&g)));
            let output = confined(&g.confinement, "/bin/sh", &script)
                .current_dir(&g.scene.workspace)
                .uid(4242)
                .gid(4242)
                .output()
                .unwrap();
            assert!(String::from_utf8_lossy(&output.stderr).ends_with("4242\n"), "{output:?}");
            assert_guarded_after(&g, &output, Some(4242));
        }
    }

    #[test]
    fn prepare_names_the_read_only_path_it_cannot_use() {
        if !landlock_here("prepare_names_the_read_only_path_it_cannot_use") || !support().mountns {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let confinement = Confinement {
            writable: vec![dir.path().to_path_buf()],
            read_only: vec![dir.path().join(".git")],
            network: true,
            ..Default::default()
        };
        let error = confinement.prepare().unwrap_err().to_string();
        assert!(error.contains(&format!("read-only path {}", dir.path().join(".git").display())), "{error}");
    }

    #[test]
    fn is_beneath_compares_whole_components() {
        assert!(is_beneath(b"/ws/.git", b"/ws/.git"));
        assert!(is_beneath(b"/ws/.git/hooks", b"/ws/.git"));
        assert!(is_beneath(b"/ws/.git/hooks", b"/ws/.git/"));
        assert!(is_beneath(b"/anything", b"/"));
        assert!(!is_beneath(b"/ws/.gitx", b"/ws/.git"));
        assert!(!is_beneath(b"/ws", b"/ws/.git"));
    }

    #[test]
    fn id_maps_map_an_id_to_itself() {
        let mut buf = [0u8; ID_MAP_LEN];
        assert_eq!(id_map(&mut buf, 0), b"0 0 1");
        assert_eq!(id_map(&mut buf, 1000), b"1000 1000 1");
        assert_eq!(id_map(&mut buf, u32::MAX), b"4294967295 4294967295 1");
    }

    /// `cargo test -p greenlight --lib native::confine::tests::overhead -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn overhead() {
        let scene = scene();
        let offline = Confinement {
            writable: vec![scene.workspace.clone()],
            hidden: Confinement::default_hidden(),
            network: false,
            ..Default::default()
        };
        let online = Confinement { network: true, ..offline.clone() };
        std::fs::create_dir_all(scene.workspace.join(".git")).unwrap();
        std::fs::create_dir_all(scene.workspace.join(".greenlight/runs")).unwrap();
        let read_only = vec![scene.workspace.join(".git"), scene.workspace.join(".greenlight")];
        let writable = vec![scene.workspace.clone(), scene.workspace.join(".greenlight/runs")];
        let online_ro =
            Confinement { read_only: read_only.clone(), writable: writable.clone(), ..online.clone() };
        let offline_ro = Confinement { read_only, writable, ..offline.clone() };
        let rounds = 200;
        let time = |f: &dyn Fn()| {
            let started = std::time::Instant::now();
            for _ in 0..rounds {
                f();
            }
            started.elapsed() / rounds
        };
        let prepare = time(&|| drop(offline.prepare().unwrap()));
        let plain = time(&|| assert!(Command::new("/bin/true").status().unwrap().success()));
        let landlock = time(&|| assert!(confined(&online, "/bin/true", "").status().unwrap().success()));
        let netns = time(&|| assert!(confined(&offline, "/bin/true", "").status().unwrap().success()));
        let mountns = time(&|| assert!(confined(&online_ro, "/bin/true", "").status().unwrap().success()));
        let both = time(&|| assert!(confined(&offline_ro, "/bin/true", "").status().unwrap().success()));
        // Prepared once, as a run does: what each spawn costs on its own.
        let spawn = |c: &Confinement| {
            let prepared = Arc::new(c.prepare().unwrap());
            time(&|| {
                let prepared = prepared.clone();
                let mut command = Command::new("/bin/true");
                // SAFETY: apply_in_child only makes system calls.
                unsafe { command.pre_exec(move || prepared.apply_in_child()) };
                assert!(command.status().unwrap().success());
            })
        };
        let (s_landlock, s_netns, s_mountns, s_both) =
            (spawn(&online), spawn(&offline), spawn(&online_ro), spawn(&offline_ro));
        // SAFETY: geteuid has no preconditions.
        let root = if unsafe { libc::geteuid() } == 0 { "root: no user namespace" } else { "user namespace" };
        eprintln!(
            "per spawn of /bin/true ({root}): prepare {prepare:?}; unconfined {plain:?}; prepare + Landlock {landlock:?}; \
             prepare + Landlock + private netns {netns:?}; prepare + Landlock + read-only mounts {mountns:?}; \
             prepare + Landlock + netns + read-only mounts {both:?}\n\
             prepared once: Landlock {s_landlock:?}; + netns {s_netns:?}; + read-only mounts {s_mountns:?}; \
             + netns + read-only mounts {s_both:?}"
        );
    }
}
