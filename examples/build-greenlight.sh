#!/usr/bin/env bash
# Builds greenlight for the examples (installing the wasm32-wasip2 target first if needed: the
# built-in gates are compiled to WebAssembly) and prints the binary's path on stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "==> installing the wasm32-wasip2 target (the built-in gates are compiled to WebAssembly)" >&2
    rustup target add wasm32-wasip2 >&2
fi
echo "==> building greenlight" >&2
cargo build --quiet --manifest-path "$root/Cargo.toml" --bin greenlight >&2
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
echo "$target_dir/debug/greenlight"
