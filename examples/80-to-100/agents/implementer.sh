#!/bin/sh
# The implementer: a scripted agent that stands in for an agent CLI so the example runs offline.
# Like any `command:` agent it gets its task on stdin (and in $GREENLIGHT_TASK), runs in the
# workspace, and what it prints becomes the step's output.
#
# $EXAMPLE_SCENARIO (the workflow passes it by name, see `env:` in workflow.yaml) decides how
# good it is: `green` gets slug() right the first time; `repaired` and `exhausted` forget an edge
# case (dashes at the ends are not trimmed), so the new tests go red.
set -eu
task=$(cat)
echo "task: $task"

if [ "$EXAMPLE_SCENARIO" = green ]; then
    trim=".replace(/^-+|-+\$/g, '')"
else
    trim="" # the bug: "  Hello, World! " becomes "-hello-world-"
fi

cat >src/slug.js <<JS
// slug(): a URL-safe identifier for a piece of text.

/** \`text\` in lower case, every run of other characters than a-z and 0-9 turned into one dash. */
export function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-')$trim;
}
JS

cat >tests/slug.test.js <<'JS'
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slug } from '../src/slug.js';

test('lowercases words and joins them with dashes', () => {
  assert.equal(slug('Hello World'), 'hello-world');
});

test('collapses punctuation and spaces into one dash', () => {
  assert.equal(slug('Rust, Wasm & Node'), 'rust-wasm-node');
});

test('trims dashes at the ends', () => {
  assert.equal(slug('  --Hello, World!--  '), 'hello-world');
});
JS
echo "wrote slug() in src/slug.js and its tests in tests/slug.test.js"
