// The existing regression tests. The workflow protects this file: no agent may edit it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capitalize, titleCase, words } from '../src/text.js';

test('words splits on anything that is not a letter or digit', () => {
  assert.deepEqual(words('  hello, big world 42 '), ['hello', 'big', 'world', '42']);
  assert.deepEqual(words('...'), []);
});

test('capitalize upper-cases the first letter only', () => {
  assert.equal(capitalize('rust'), 'Rust');
  assert.equal(capitalize(''), '');
});

test('titleCase capitalizes every word', () => {
  assert.equal(titleCase('the 80-to-100 pattern'), 'The 80 To 100 Pattern');
});
