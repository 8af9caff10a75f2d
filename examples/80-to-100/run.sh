#!/usr/bin/env bash
# greenlight's 80-to-100 example, offline, from a fresh clone: builds greenlight, makes a scratch
# git repository from sample/ and runs workflow.yaml in it with scripted agents. The scenario picks
# how good the agents are:
#
#   run.sh green       the implementer gets it right: every gate green, one commit
#   run.sh repaired    (the default) the implementer leaves a bug, the tests go red, the fixer
#                      repairs it, the gates rerun green, one commit
#   run.sh exhausted   the fixer cannot fix it: the repairs run out, the run ends blocked (exit 3),
#                      nothing is committed, BLOCKED_NO_COMMIT.md says why
#
# Exits 0 when the outcome is the one the scenario expects, 1 otherwise. The scratch repository is
# kept so you can look around in it (its path is printed at the end).
set -euo pipefail

scenario=${1:-repaired}
case "$scenario" in
green | repaired) expected_exit=0 ;;
exhausted) expected_exit=3 ;;
*)
    echo "usage: $0 [green|repaired|exhausted]" >&2
    exit 2
    ;;
esac

here=$(cd "$(dirname "$0")" && pwd)

greenlight=$("$here/../build-greenlight.sh")

work=$(mktemp -d "${TMPDIR:-/tmp}/greenlight-80-to-100.XXXXXX")
cp -r "$here/sample/." "$work"
git -C "$work" init -q -b main
git -C "$work" config user.name "80-to-100 example"
git -C "$work" config user.email "example@greenlight.invalid"
git -C "$work" config commit.gpgsign false
git -C "$work" add -A
git -C "$work" commit -qm "textkit: words, capitalize, titleCase"
before=$(git -C "$work" rev-parse HEAD)

echo "==> EXAMPLE_SCENARIO=$scenario greenlight run examples/80-to-100/workflow.yaml --workdir $work"
set +e
EXAMPLE_SCENARIO=$scenario "$greenlight" run "$here/workflow.yaml" --workdir "$work"
code=$?
set -e
echo "==> greenlight exited $code"

echo
echo "==> git log --oneline"
git -C "$work" log --oneline
after=$(git -C "$work" rev-parse HEAD)

blocked=$(find "$work/.greenlight/runs" -name BLOCKED_NO_COMMIT.md 2>/dev/null | head -n 1)
if [ -n "$blocked" ]; then
    echo
    echo "==> $blocked"
    cat "$blocked"
fi

echo
echo "==> the scratch repository: $work (its runs are in $work/.greenlight/runs/)"

committed=$([ "$after" != "$before" ] && echo yes || echo no)
expected_commit=$([ "$expected_exit" = 0 ] && echo yes || echo no)
if [ "$code" = "$expected_exit" ] && [ "$committed" = "$expected_commit" ]; then
    echo "==> as expected for '$scenario': exit $code, new commit: $committed"
else
    echo "==> NOT as expected for '$scenario': exit $code (expected $expected_exit)," \
        "new commit: $committed (expected $expected_commit)" >&2
    exit 1
fi
