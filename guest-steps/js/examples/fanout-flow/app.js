// fanout-flow: a fan-out decided at run time, from a step's output. `list` runs `ls src`; when
// it succeeds, `decide` adds one `check-NAME` step per .js file it listed, and `finish` waits
// for all of them. A JS workflow has no filesystem API: it learns about the workspace from what
// its steps print.
import { workflow, Plan, Step, Directive, toName } from "./greenlight-workflow.js";

// Only plain file names: a name goes into a shell command below and must not become shell syntax.
const PLAIN = /^[A-Za-z0-9._-]+$/;

export const { plan, decide } = workflow({
  plan: () =>
    new Plan("fanout-flow")
      .step(Step.run("list", "ls src"))
      .step(Step.run("finish", "echo done").needs(["list"])),

  decide: (event) => {
    if (event.step !== "list" || !event.succeeded()) return [];
    const files = event.output.split("\n").filter((f) => PLAIN.test(f) && f.endsWith(".js"));
    const taken = new Set();
    return files.map((file) => {
      // "a.js" -> "check-a-js"; two files that make the same name ("a.b.js", "a-b.js") get -2, -3, ...
      let name = `check-${toName(file)}`;
      for (let n = 2; taken.has(name); n++) name = `check-${toName(file)}-${n}`;
      taken.add(name);
      return Directive.addStep(Step.run(name, `cat src/${file}`).needs(["list"])).requiredBy(["finish"]);
    });
  },
});
