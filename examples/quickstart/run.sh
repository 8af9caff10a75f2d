#!/usr/bin/env bash
# greenlight's quickstart, offline, from a fresh clone: builds greenlight, makes a scratch git
# repository from sample/, and runs workflow.yaml in it. A scripted agent implements a feature,
# built-in gates check the change, the tests run, and the run must finish green.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

greenlight=$("$here/../build-greenlight.sh")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/sample/." "$work"
git -C "$work" init -q -b main
git -C "$work" add -A
git -C "$work" -c user.name=quickstart -c user.email=quickstart@example.com commit -qm "sample crate"

# The workflow file lies outside the scratch workspace, so greenlight would run it untrusted
# (confined, and only with what you grant); it is this repository's own file, so trust it.
echo "==> greenlight run examples/quickstart/workflow.yaml --workdir $work --trust"
"$greenlight" run "$here/workflow.yaml" --workdir "$work" --trust

echo
echo "==> what the agent changed"
git -C "$work" status --short

echo
echo "==> the report step said"
cat "$work"/.greenlight/runs/*/steps/report/attempt-1.log

echo
echo "==> the run, as the run store recorded it (greenlight runs / show)"
"$greenlight" runs --workdir "$work"
"$greenlight" show latest --workdir "$work"
