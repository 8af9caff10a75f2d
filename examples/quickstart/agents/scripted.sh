#!/bin/sh
# A scripted agent: stands in for an agent CLI so the quickstart runs offline. Like any
# `command:` agent it gets its task on stdin (and in $GREENLIGHT_TASK), runs in the workspace, and
# what it prints becomes the step's output.
set -eu
task=$(cat)
echo "task: $task"

# The task names the function to add: "Add a NAME function ...".
feature=$(printf '%s\n' "$task" | sed -n 's/^Add a \([a-z_][a-z0-9_]*\) function.*/\1/p')
[ -n "$feature" ] || { echo "I do not understand the task" >&2; exit 2; }

cat >>src/lib.rs <<RS

/// Says hello to [\`name\`].
pub fn $feature() -> String {
    format!("hello, {}!", name())
}
RS
cat >"tests/$feature.rs" <<RS
#[test]
fn ${feature}_says_hello() {
    assert_eq!(greetings::$feature(), "hello, world!");
}
RS
echo "added $feature() to src/lib.rs and its test to tests/$feature.rs"
