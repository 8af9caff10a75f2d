#!/bin/sh
# The fixer: the repair agent. greenlight starts it when a repairable step goes red, with a task
# that describes the failure (on stdin and in $GREENLIGHT_TASK) and the same facts as JSON in the
# file $GREENLIGHT_REPAIR_CONTEXT: the step, the round, the failing checks, the command, its exit
# code and the tail of its output. $GREENLIGHT_STEP names the red step, $GREENLIGHT_REPAIR_ROUND
# the round (1, 2, ...). After it exits, greenlight reruns the step to see whether it is green now.
#
# $EXAMPLE_SCENARIO decides how good it is: `repaired` finds the bug from the failing test's
# name and fixes it; `exhausted` makes a wrong fix in round 1 and, in round 2, tries to "fix" the
# test by deleting it -- which greenlight reverts, because the workflow protects that file.
set -eu
task=$(cat)
echo "repairing \`$GREENLIGHT_STEP\`, round $GREENLIGHT_REPAIR_ROUND; the task starts with:"
printf '%s\n' "$task" | head -n 3 | sed 's/^/  | /'

# What failed, from the JSON context (node is the one tool this repository has): each failing
# check with its detail; builtin:test-summary's detail names the failing tests. The context also
# has the command, its exit code and `output_tail`, the end of its output.
failing=$(node -e '
  const context = JSON.parse(require("fs").readFileSync(process.env.GREENLIGHT_REPAIR_CONTEXT, "utf8"));
  for (const check of context.failed_checks) console.log(`  ${check.check}: ${check.detail}`);
')
printf 'failing checks:\n%s\n' "$failing"

case "$failing" in
*"trims dashes at the ends"*) ;;
*)
    echo "I do not know how to fix this"
    exit 1
    ;;
esac

if [ "$EXAMPLE_SCENARIO" = repaired ]; then
    # The right fix: trim the dashes at both ends.
    sed -i "s|replace(/\[^a-z0-9\]+/g, '-');|replace(/[^a-z0-9]+/g, '-').replace(/^-+\|-+\$/g, '');|" src/slug.js
    echo "fixed: slug() now trims dashes at both ends"
elif [ "$GREENLIGHT_REPAIR_ROUND" = 1 ]; then
    # A wrong fix: only the leading dashes.
    sed -i "s|replace(/\[^a-z0-9\]+/g, '-');|replace(/[^a-z0-9]+/g, '-').replace(/^-+/, '');|" src/slug.js
    echo "fixed (I think): slug() now trims leading dashes"
else
    # Giving up on the code and weakening the test instead: greenlight will revert this.
    node -e '
      const fs = require("fs");
      const file = "tests/slug.test.js";
      fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/\ntest\(.trims dashes[^]*$/, "\n"));
    '
    echo "fixed (I think): removed the test that kept failing"
fi
