"""{{name}}: passes when every file named in `paths` exists in the workspace.

The workspace is the gate's current directory, read-only (gate.toml asks for `read = ["."]`);
nothing outside it is visible. A GateError becomes an `error` verdict with its message.
"""
import os

from greenlight_gate import Finding, GateError, Verdict, gate, require


@gate
def verify(params, step):
    paths = require(params, "paths", list[str])
    if not paths:
        raise GateError("`paths` is empty; name at least one file")
    missing = []
    for path in paths:
        if path.startswith("/") or ".." in path.split("/"):
            raise GateError(f"{path!r} is not a path inside the workspace")
        if not os.path.exists(path):
            missing.append(path)
    if not missing:
        return Verdict.pass_(f"all {len(paths)} files exist")
    return Verdict.fail("missing: " + ", ".join(missing),
                        findings=[Finding.error(f"{p} does not exist", path=p) for p in missing])
