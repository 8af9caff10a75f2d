//! Compiled components on disk, so a gate is compiled once per machine and loaded in
//! milliseconds after that.
//!
//! The key is the component's sha256 plus a hash of the engine's compilation settings, which
//! covers the Wasmtime version, target, features and tunables. A compiled artifact is native
//! code that is loaded without validation, so the cache lives outside every workspace (where
//! agents and gates can write) in a directory only this user can write: by default
//! `$XDG_CACHE_HOME/greenlight/components`, or `$GREENLIGHT_CACHE_DIR/components`.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    /// The default location, if this user has a cache directory.
    pub fn default_dir() -> Option<PathBuf> {
        match std::env::var_os("GREENLIGHT_CACHE_DIR") {
            Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
            _ => dirs::cache_dir().map(|d| d.join("greenlight")),
        }
    }

    pub fn new(root: &Path, engine: &Engine) -> CompileCache {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        CompileCache { dir: root.join("components"), engine_key: format!("{:016x}", hasher.finish()) }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    pub fn contains(&self, sha256: &str) -> bool {
        self.path(sha256).exists()
    }

    /// The cached compilation of the component with this digest, if there is a usable one.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `store` below from Wasmtime's own serialization, in a
        // directory private to this user, and Wasmtime checks its header against this engine's
        // configuration; an incompatible or damaged file is an error, and we recompile.
        unsafe { Component::deserialize_file(engine, &path) }.ok()
    }

    /// Save a compilation; failure to cache is not an error (the next run compiles again).
    pub fn store(&self, sha256: &str, component: &Component) {
        let _ = self.try_store(sha256, component);
    }

    fn try_store(&self, sha256: &str, component: &Component) -> anyhow::Result<()> {
        let bytes = component.serialize()?;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir)?;
        let path = self.path(sha256);
        // Write beside, then rename: a concurrent reader sees the old file or the whole new one.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}
