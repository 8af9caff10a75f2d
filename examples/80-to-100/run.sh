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
# The second argument picks what runs:
#
#   run.sh SCENARIO yaml        (the default) workflow.yaml
#   run.sh SCENARIO component   the same workflow as a WebAssembly component (flow-80-to-100.wasm,
#                               built from guest-steps/workflows/flow-80-to-100 with greenlight),
#                               which also adds a test step per new test file. A component is run
#                               as untrusted: it gets only what the command line grants (the two
#                               agent scripts, EXAMPLE_SCENARIO, and running `node`).
#
# Exits 0 when the outcome is the one the scenario expects, 1 otherwise. The scratch repository is
# kept so you can look around in it (its path is printed at the end).
set -euo pipefail

usage="usage: $0 [green|repaired|exhausted] [yaml|component]"
scenario=${1:-repaired}
case "$scenario" in
green | repaired) expected_exit=0 ;;
exhausted) expected_exit=3 ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
mode=${2:-yaml}
case "$mode" in
yaml | component) ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

greenlight=$("$here/../build-greenlight.sh")

if [ "$mode" = yaml ]; then
    workflow="$here/workflow.yaml"
    shown=examples/80-to-100/workflow.yaml
else
    # greenlight's build script builds the workflow components too and copies them to
    # TARGET/guest-steps/workflows/.
    target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    wasm="$target_dir/guest-steps/workflows/flow-80-to-100.wasm"
    if [ ! -f "$wasm" ]; then
        echo "$wasm is missing: building greenlight should have built it (see host/build.rs)" >&2
        exit 1
    fi
    # The component's agent commands (./agents/...) are relative to the component's directory:
    # put the agents beside it.
    flow_dir=$(mktemp -d "${TMPDIR:-/tmp}/greenlight-80-to-100-flow.XXXXXX")
    cp "$wasm" "$flow_dir/"
    cp -r "$here/agents" "$flow_dir/"
    workflow="$flow_dir/flow-80-to-100.wasm"
    shown=$workflow
fi
# Either way the workflow runs untrusted (a component; a YAML file outside the workspace): it
# may only run what is granted here, confined (writes only in the workspace, no network).
grants=(--grant-agent ./agents/implementer.sh --grant-agent ./agents/fixer.sh
    --grant-env EXAMPLE_SCENARIO --grant-exec 'node **')

work=$(mktemp -d "${TMPDIR:-/tmp}/greenlight-80-to-100.XXXXXX")
cp -r "$here/sample/." "$work"
git -C "$work" init -q -b main
git -C "$work" config user.name "80-to-100 example"
git -C "$work" config user.email "example@greenlight.invalid"
git -C "$work" config commit.gpgsign false
git -C "$work" add -A
git -C "$work" commit -qm "textkit: words, capitalize, titleCase"
before=$(git -C "$work" rev-parse HEAD)

echo "==> EXAMPLE_SCENARIO=$scenario greenlight run $shown --workdir $work${grants[*]+$(printf " %q" "${grants[@]}")}"
set +e
EXAMPLE_SCENARIO=$scenario "$greenlight" run "$workflow" --workdir "$work" "${grants[@]}"
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
    echo "==> as expected for '$scenario' ($mode): exit $code, new commit: $committed"
else
    echo "==> NOT as expected for '$scenario' ($mode): exit $code (expected $expected_exit)," \
        "new commit: $committed (expected $expected_commit)" >&2
    exit 1
fi
