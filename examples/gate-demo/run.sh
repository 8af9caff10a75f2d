#!/usr/bin/env bash
# greenlight's gate demo: offline, from a fresh clone.
#
# Makes a small git repository, applies the kind of change an agent would make (a new function
# and its test), and verifies it with built-in gates: the change touched src/ and tests/, the
# tests ran and passed, no secrets were added. Then a second change leaks a credential, and the
# no-secrets gate must catch it. Exits 0 only if every gate said what it should.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

bin=$("$here/../build-greenlight.sh")
greenlight() { "$bin" "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/sample/." "$work"
cd "$work"
git init -q -b main
git add -A
git -c user.name=demo -c user.email=demo@example.com commit -qm "sample crate"

# Show a command as you would type it, then run it.
step() {
    printf '\n==> %s\n$' "$1"
    for arg in "${@:2}"; do
        case $arg in
        *[!A-Za-z0-9_./:=-]*) printf " '%s'" "$arg" ;;
        *) printf ' %s' "$arg" ;;
        esac
    done
    printf '\n'
    "${@:2}"
}

echo "==> an agent adds a function and its test"
cat >> src/lib.rs <<'RS'

/// Multiplies two numbers.
pub fn mul(a: i64, b: i64) -> i64 {
    a * b
}
RS
cat > tests/mul.rs <<'RS'
#[test]
fn multiplies() {
    assert_eq!(sample::mul(4, 5), 20);
}
RS

step "edit gate: something changed under src/ and under tests/" \
    greenlight gate run builtin:changed-files --param 'paths=[src/, tests/]' --param 'protected=[Cargo.toml]'

echo
echo "==> the tests run (cargo test, offline)"
set +e
cargo test --offline --quiet >test-output.txt 2>&1
tests_exit=$?
set -e
step "test gate: at least one test ran and none failed" \
    greenlight gate run builtin:test-summary --output-file test-output.txt --exit-code "$tests_exit"
rm test-output.txt

step "secret gate: the change adds no credentials" greenlight gate run builtin:no-secrets

echo
echo "==> a second change leaks a private key; the secret gate must say FAIL (exit 1)"
# (The header is split so this script itself holds no key-shaped line.)
{ echo "-----BEGIN OPENSSH PRIVATE"" KEY-----"; echo "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"; echo "-----END OPENSSH PRIVATE"" KEY-----"; } >deploy_key
set +e
greenlight gate run builtin:no-secrets
leak_exit=$?
set -e
if [ "$leak_exit" -ne 1 ]; then
    echo "expected the no-secrets gate to fail (exit 1), got exit $leak_exit" >&2
    exit 1
fi

echo
echo "==> demo finished: three gates green on the good change, the leak caught."
