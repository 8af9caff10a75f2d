"""fanout-flow: `list` runs `ls src`; when it succeeds, decide reads src/ and adds one step per
plain-named .py file (`check-NAME`: `cat src/FILE`), each required by `finish` (`echo done`)."""

import os
import re

from greenlight_workflow import Directive, Plan, Step, to_name, workflow

# Only plain names: a file name must not become shell syntax in the command below.
PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.py")


@workflow.plan
def plan(params):
    return (Plan("fanout-flow")
            .step(Step.run("list", "ls src"))
            .step(Step.run("finish", "echo done").needs("list")))


@workflow.decide
def decide(event, view):
    if event.step != "list" or not event.succeeded:
        return []
    # The workspace is the component's working directory, read-only (workflow.toml: read = ["."]).
    names = sorted(n for n in os.listdir("src") if PLAIN.fullmatch(n) and os.path.isfile(f"src/{n}"))
    return [Directive.add_step(Step.run(f"check-{to_name(n)}", f"cat src/{n}").needs("list"))
            .required_by("finish")
            for n in names]
