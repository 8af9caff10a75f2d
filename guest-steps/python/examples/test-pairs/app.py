"""test-pairs: every new source file under `paths` has a matching test file.

New files are what `git status` shows as added (staged) or untracked. For `src/pkg/foo.py` the
gate looks for `tests/pkg/test_foo.py`, `tests/pkg/foo_test.py`, `tests/test_foo.py` and
`tests/foo_test.py`; for other extensions `foo.test.EXT` and `test_foo.EXT` in the same places.
A test counts when it exists in the workspace or is itself new. Files that are tests themselves,
`__init__.py`, `__main__.py` and `conftest.py` need no test.
"""

import os

from greenlight_gate import Finding, GateError, Verdict, gate, param, run_ok

GIT_PREFIX = ["rev-parse", "--show-prefix"]
GIT_STATUS = ["--no-optional-locks", "-c", "core.fsmonitor=false",
              "status", "--porcelain=v1", "-z", "--untracked-files=all"]
DEFAULT_EXTENSIONS = ["py", "js", "jsx", "mjs", "cjs", "ts", "tsx", "rs", "go", "rb", "java",
                      "kt", "c", "cc", "cpp"]
NO_TEST_NEEDED = {"__init__.py", "__main__.py", "conftest.py"}


def directory(name: str, value: str) -> str:
    """A workspace-relative directory as a prefix: "src" -> "src/", "." -> ""."""
    parts = [p for p in value.replace("\\", "/").split("/") if p not in ("", ".")]
    if value.startswith("/") or ".." in parts:
        raise GateError(f"`{name}` entry {value!r} must be a directory inside the workspace")
    return "".join(p + "/" for p in parts)


def new_files(status: str) -> dict[str, str]:
    """Paths `git status --porcelain=v1 -z` shows as new, each with how it is new."""
    found: dict[str, str] = {}
    fields = iter(status.split("\0"))
    for entry in fields:
        if len(entry) < 4:
            continue
        xy, path = entry[:2], entry[3:]
        if xy[0] in "RC":
            next(fields, None)  # the original path
        if xy == "??":
            found[path] = "untracked"
        elif xy[0] in "AC" and xy[1] != "D":
            found[path] = "added" if xy[0] == "A" else "copied"
    return found


def is_test(name: str) -> bool:
    stem = name.rsplit(".", 1)[0]
    return (stem.startswith("test_") or stem.endswith("_test")
            or stem.endswith(".test") or stem.endswith(".spec"))


def candidates(rel: str, tests: str) -> list[str]:
    """Test files that would cover the source file at `rel` (relative to its `paths` entry)."""
    subdir, _, name = rel.rpartition("/")
    stem, ext = name.rsplit(".", 1)
    names = [f"test_{stem}.py", f"{stem}_test.py"] if ext == "py" else [f"{stem}.test.{ext}", f"test_{stem}.{ext}"]
    dirs = [tests + subdir + "/", tests] if subdir else [tests]
    return [d + n for d in dirs for n in names]


@gate
def verify(params, step):
    roots = [directory("paths", p) for p in param(params, "paths", ["src/"], list[str])]
    tests = directory("tests", param(params, "tests", "tests/", str))
    extensions = {e.lstrip(".") for e in param(params, "extensions", DEFAULT_EXTENSIONS, list[str])}

    # git shows paths from the repository root; the gate sees the workspace.
    prefix = "" if os.path.exists(".git") else run_ok("git", GIT_PREFIX).strip()
    new = {p[len(prefix):]: how for p, how in new_files(run_ok("git", GIT_STATUS)).items()
           if p.startswith(prefix)}

    sources = []
    for path in sorted(new):
        root = next((r for r in roots if path.startswith(r)), None)
        name = path.rsplit("/", 1)[-1]
        if (root is None or (tests and path.startswith(tests)) or "." not in name
                or name.rsplit(".", 1)[1] not in extensions or name in NO_TEST_NEEDED or is_test(name)):
            continue
        sources.append((path, candidates(path[len(root):], tests)))

    shown = ", ".join(r or "." for r in roots)
    lines = [f"New files (git status, against HEAD): {len(new)}"]
    lines += [f"  {p} ({how})" for p, how in sorted(new.items())]
    lines.append(f"New source files under {shown} (extensions: {', '.join(sorted(extensions))}):")
    missing = []
    for path, looked in sources:
        found = next((t for t in looked if t in new or os.path.isfile(t)), None)
        if found:
            lines.append(f"  {path}: tested by {found}")
        else:
            missing.append(Finding.error("no matching test file; looked for " + ", ".join(looked), path=path))
            lines.append(f"  {path}: NO TEST; looked for {', '.join(looked)}")
    if not sources:
        lines.append("  (none)")
    evidence = "\n".join(lines) + "\n"

    if missing:
        names = ", ".join(f.path for f in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        return Verdict.fail(f"{len(missing)} of {len(sources)} new source files under {shown} lack a test: {names}",
                            findings=missing, evidence=evidence)
    if not sources:
        return Verdict.pass_(f"no new source files under {shown}", evidence=evidence)
    return Verdict.pass_(f"all {len(sources)} new source files under {shown} have a test", evidence=evidence)
