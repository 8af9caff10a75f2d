//! WASI filesystem access: exactly the effective mounts, read-only unless a write was granted.
//! No environment, no arguments, no network, no inherited stdio: the guest's own stdout and
//! stderr go to a bounded buffer the host shows when the gate crashes.

use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::sandbox::grants::Mount;

pub fn wasi_context(mounts: &[Mount], console: &MemoryOutputPipe) -> anyhow::Result<WasiCtx> {
    let mut builder = WasiCtxBuilder::new();
    builder.stdout(console.clone()).stderr(console.clone());
    for mount in mounts {
        let perms = if mount.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        builder
            .preopened_dir(&mount.host, &mount.guest, perms)
            .map_err(|e| anyhow::anyhow!("cannot open {} for the gate: {e}", mount.host.display()))?;
    }
    Ok(builder.build())
}
