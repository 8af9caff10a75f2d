#!/usr/bin/env bash
# Installs the toolchains that build Python and JavaScript gates, inside this repository's target
# directory (nothing global):
#   componentize-py 0.25.1   into a venv at TARGET/toolchains/python   (needs python3 >= 3.10)
#   componentize-js 0.23.0   into TARGET/toolchains/js/node_modules    (needs node >= 18, npm)
# and puts launchers for both in TARGET/toolchains/bin. Add that directory to PATH and
# `greenlight gate build` finds them:
#   export PATH="$(guest-steps/install-toolchains.sh --print-bin):$PATH"
# Running it again does nothing when both are already installed at these versions.
set -euo pipefail

PY_VERSION=0.25.1
JS_VERSION=0.23.0

root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
tools="$target_dir/toolchains"
bin="$tools/bin"

if [[ "${1:-}" == "--print-bin" ]]; then
    echo "$bin"
    exit 0
fi

mkdir -p "$bin"

# componentize-py: a venv of its own, so the system's Python packages are never touched.
py_installed() {
    [[ -x "$tools/python/bin/componentize-py" ]] &&
        [[ "$("$tools/python/bin/python" -c 'import importlib.metadata as m; print(m.version("componentize-py"))' 2>/dev/null)" == "$PY_VERSION" ]]
}
if ! py_installed; then
    echo "==> installing componentize-py $PY_VERSION into $tools/python" >&2
    python3 -m venv "$tools/python"
    "$tools/python/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$PY_VERSION" >&2
fi

# componentize-js: a private npm prefix.
js_installed() {
    local pkg="$tools/js/node_modules/@bytecodealliance/componentize-js/package.json"
    [[ -f "$pkg" ]] && [[ -x "$tools/js/node_modules/.bin/componentize-js" ]] &&
        [[ "$(node -p "require('$pkg').version" 2>/dev/null)" == "$JS_VERSION" ]]
}
if ! js_installed; then
    echo "==> installing componentize-js $JS_VERSION into $tools/js" >&2
    mkdir -p "$tools/js"
    npm install --silent --no-audit --no-fund --prefix "$tools/js" \
        "@bytecodealliance/componentize-js@$JS_VERSION" >&2
fi

# Launchers that find the tools relative to themselves (the target directory may move).
write_launcher() {
    local name=$1 relative=$2
    local file="$bin/$name"
    local text
    text=$(printf '#!/bin/sh\n# Installed by guest-steps/install-toolchains.sh.\nexec "$(dirname "$0")/%s" "$@"\n' "$relative")
    if [[ ! -x "$file" ]] || [[ "$(cat "$file")" != "$text" ]]; then
        printf '%s\n' "$text" >"$file"
        chmod +x "$file"
    fi
}
write_launcher componentize-py ../python/bin/componentize-py
write_launcher componentize-js ../js/node_modules/.bin/componentize-js

if ! py_installed || ! js_installed; then
    echo "error: the toolchains did not install cleanly; see the messages above" >&2
    exit 1
fi
