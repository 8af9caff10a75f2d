// greenlight-workflow.js: write a greenlight workflow component in JavaScript (workflow API
// greenlight:workflow@0.1.0). The builders mirror the Rust SDK (guest-steps/workflow-sdk).
//
// Vendor this file beside your app.js and build it against the `workflow` world with
// componentize-js 0.23 (`greenlight gate build DIR` does so for a project with a workflow.toml).
// The canonical copy is guest-steps/js/greenlight-workflow.js.
//
//   import { workflow, Plan, Step, Check, Directive } from "./greenlight-workflow.js";
//   export const { plan, decide } = workflow({
//     plan: (params) => new Plan("review")
//       .step(Step.run("tests", "npm test").verify(Check.exitCode(0)))
//       .step(Step.run("done", "echo done").needs(["tests"])),
//     decide: (event, view) => [],   // optional: Directive[] each time a step ends
//   });
//
// An exception in `plan` becomes the error shown as the reason nothing ran. An exception in
// `decide` fails the run with its message. A value the WIT types cannot hold (a negative
// count, an unknown enum) is refused here with a message: componentize-js would otherwise wrap
// it silently or trap.

/** A problem the workflow reports; shown as its message alone (no type, no location). */
export class WorkflowError extends Error {
  constructor(message) {
    super(message);
    this.name = "WorkflowError";
  }
}

/** @typedef {string|string[]} Strings one string or an array of them */
const list = (items) => (Array.isArray(items) ? items : [items]).map(String);

/** The workflow (the WIT `definition`): what `plan` returns. Fails fast and has no steps yet. */
export class Plan {
  /** @param {string} name */
  constructor(name) {
    /** The WIT record (camelCase); nested values are builders. */
    this.wit = { name: String(name), vars: [], maxConcurrency: null, timeoutMs: null, onFailure: "fail-fast",
      agents: [], protect: [], repair: null, steps: [] };
  }
  /** `vars: {NAME: DEFAULT}` @param {string} name @param {string} dflt */
  var(name, dflt) { this.wit.vars.push([String(name), String(dflt)]); return this; }
  /** @param {number} n */
  maxConcurrency(n) { this.wit.maxConcurrency = n; return this; }
  /** The deadline of the whole run. @param {number} ms milliseconds */
  timeout(ms) { this.wit.timeoutMs = ms; return this; }
  /** @param {"fail-fast"|"continue"} mode */
  onFailure(mode) { this.wit.onFailure = mode; return this; }
  /** @param {Agent} agent */
  agent(agent) { this.wit.agents.push(agent); return this; }
  /** Globs of files no agent may change. @param {Strings} globs */
  protect(globs) { this.wit.protect.push(...list(globs)); return this; }
  /** The default repair loop: `repair: {agent, attempts}`. @param {string} agent @param {number} attempts */
  repair(agent, attempts) { this.wit.repair = { agent: String(agent), attempts }; return this; }
  /** @param {Step} step */
  step(step) { this.wit.steps.push(step); return this; }
}

export class Agent {
  /** Use Agent.command or Agent.cli. */
  constructor(name, kind) { this.wit = { name: String(name), kind, timeoutMs: null, env: [] }; }
  /** `command: [PROGRAM, ARG...]`: any program, given the task on stdin. @param {string} name @param {string[]} argv */
  static command(name, argv) { return new Agent(name, { tag: "command", val: list(argv) }); }
  /** `cli: claude` (codex, gemini, opencode, aider, goose, cursor-agent). @param {string} name @param {string} cli */
  static cli(name, cli) { return new Agent(name, { tag: "cli", val: { name: String(cli), model: null } }); }
  /** The model of a `cli` agent. @param {string} model */
  model(model) {
    if (this.wit.kind.tag !== "cli") throw new WorkflowError(`\`model\` applies to a \`cli\` agent, and \`${this.wit.name}\` is a command`);
    this.wit.kind.val.model = String(model);
    return this;
  }
  /** @param {number} ms milliseconds */
  timeout(ms) { this.wit.timeoutMs = ms; return this; }
  /** Environment variables passed through from the runner, by name. @param {Strings} names */
  env(names) { this.wit.env.push(...list(names)); return this; }
}

export class Step {
  /** Use Step.run, Step.agent, Step.gate or Step.commit. */
  constructor(name, action) {
    this.wit = { name: String(name), needs: [], action, timeoutMs: null, retries: 0, env: [], cwd: null, verify: [],
      allowFailure: false, repair: { tag: "inherit" }, protect: [], produces: [] };
  }
  /** `run: COMMAND` @param {string} name @param {string} command */
  static run(name, command) { return new Step(name, { tag: "run", val: String(command) }); }
  /** `agent: AGENT` + `task: TASK` @param {string} name @param {string} agent @param {string} task */
  static agent(name, agent, task) { return new Step(name, { tag: "agent", val: { agent: String(agent), task: String(task) } }); }
  /** `gate: REF` @param {string} name @param {GateRef|string} gate `builtin:NAME` or a `.wasm` path */
  static gate(name, gate) { return new Step(name, { tag: "gate", val: GateRef.from(gate) }); }
  /** `commit: {...}` @param {string} name @param {Commit} commit */
  static commit(name, commit) { return new Step(name, { tag: "commit", val: commit }); }
  /** @param {Strings} steps steps that must succeed first */
  needs(steps) { this.wit.needs.push(...list(steps)); return this; }
  /** Adds one check to `verify:`. @param {Check} check */
  verify(check) { this.wit.verify.push(check); return this; }
  /** @param {number} ms milliseconds */
  timeout(ms) { this.wit.timeoutMs = ms; return this; }
  /** @param {number} n */
  retries(n) { this.wit.retries = n; return this; }
  /** @param {string} name @param {string} value */
  env(name, value) { this.wit.env.push([String(name), String(value)]); return this; }
  /** Relative to the workspace. @param {string} dir */
  cwd(dir) { this.wit.cwd = String(dir); return this; }
  allowFailure() { this.wit.allowFailure = true; return this; }
  /** `repair: {agent, attempts}` @param {string} agent @param {number} attempts */
  repair(agent, attempts) { this.wit.repair = { tag: "on", val: { agent: String(agent), attempts } }; return this; }
  /** `repair: off` */
  repairOff() { this.wit.repair = { tag: "off" }; return this; }
  /** @param {Strings} globs */
  protect(globs) { this.wit.protect.push(...list(globs)); return this; }
  /** Paths an agent step must leave created or changed. @param {Strings} paths */
  produces(paths) { this.wit.produces.push(...list(paths)); return this; }
}

export class GateRef {
  /** @param {string} gate `builtin:NAME` or a path ending in `.wasm` (relative to the workflow component) */
  constructor(gate) {
    this.wit = { gate: String(gate), params: "{}", sha256: null, grants: { read: [], write: [], exec: [] } };
  }
  /** `builtin:NAME` @param {string} name */
  static builtin(name) { return new GateRef(`builtin:${name}`); }
  /** @param {GateRef|string} gate */
  static from(gate) { return gate instanceof GateRef ? gate : new GateRef(gate); }
  /** One entry of `with:`. @param {string} param @param {any} value anything JSON.stringify writes */
  with(param, value) {
    const params = JSON.parse(this.wit.params);
    params[param] = value;
    this.wit.params = JSON.stringify(params);
    return this;
  }
  /** @param {string} hex the expected sha256 of a component file */
  sha256(hex) { this.wit.sha256 = String(hex); return this; }
  /** `grants: {read}` for a component file. @param {Strings} paths */
  grantRead(paths) { this.wit.grants.read.push(...list(paths)); return this; }
  /** @param {Strings} paths */
  grantWrite(paths) { this.wit.grants.write.push(...list(paths)); return this; }
  /** @param {Strings} patterns */
  grantExec(patterns) { this.wit.grants.exec.push(...list(patterns)); return this; }
}

export class Commit {
  /** @param {string} message */
  constructor(message) { this.wit = { message: String(message), paths: [], requires: [], skipHooks: false }; }
  /** @param {Strings} paths */
  paths(paths) { this.wit.paths.push(...list(paths)); return this; }
  /** Steps that must all have succeeded in this run (they also order the commit). @param {Strings} steps */
  requires(steps) { this.wit.requires.push(...list(steps)); return this; }
  skipHooks() { this.wit.skipHooks = true; return this; }
}

/** One check of a step's `verify:`. */
export class Check {
  constructor(tag, val) { this.wit = { tag, val }; }
  /** @param {number} code */
  static exitCode(code) { return new Check("exit-code", code); }
  /** @param {string} text */
  static outputContains(text) { return new Check("output-contains", String(text)); }
  /** @param {string} regex */
  static outputMatches(regex) { return new Check("output-matches", String(regex)); }
  /** @param {string} path */
  static fileExists(path) { return new Check("file-exists", String(path)); }
  /** @param {GateRef|string} gate */
  static gate(gate) { return new Check("gate", GateRef.from(gate)); }
}

/** What `decide` returns: a list of these. */
export class Directive {
  constructor(tag, val) { this.wit = { tag, val }; }
  /** Add a step; chain `.requiredBy([...])` to make later steps wait for it. @param {Step} step */
  static addStep(step) { return new Directive("add-step", { step, requiredBy: [] }); }
  /** Steps not started yet that must now wait for the added step (a commit also requires it). @param {Strings} steps */
  requiredBy(steps) {
    if (this.wit.tag !== "add-step") throw new WorkflowError("`requiredBy` applies to `Directive.addStep`");
    this.wit.val.requiredBy.push(...list(steps));
    return this;
  }
  /** Skip a step that has not started. @param {string} step @param {string} reason */
  static skipStep(step, reason) { return new Directive("skip-step", [String(step), String(reason)]); }
  /** End the run `blocked`: nothing is committed. @param {string} reason */
  static block(reason) { return new Directive("block", String(reason)); }
  /** Replace what later templates read as `{{ steps.STEP.output }}`. @param {string} step @param {string} output */
  static setOutput(step, output) { return new Directive("set-output", { step: String(step), output: String(output) }); }
}

/**
 * A step that has just ended.
 * @property {string} step
 * @property {"succeeded"|"failed"|"timed-out"|"cancelled"|"skipped"|"blocked"|"needs-human"} status
 * @property {number|null} exitCode
 * @property {string} output what `{{ steps.NAME.output }}` reads; a gate step's verdict as JSON
 */
export class StepEvent {
  constructor(e) { Object.assign(this, { step: e.step, status: e.status, exitCode: e.exitCode ?? null, output: e.output }); }
  succeeded() { return this.status === "succeeded"; }
  /**
   * The verdict of a gate step that succeeded (its output).
   * @returns {{outcome: "pass"|"fail"|"error", summary: string, evidence: string,
   *   findings: {path: string|null, line: number|null, message: string, severity: "info"|"warning"|"error"}[]}}
   * @throws {WorkflowError} when the output is not a verdict
   */
  verdict() {
    let v;
    try { v = JSON.parse(this.output); } catch (e) { v = e.message; }
    if (v === null || typeof v !== "object" || typeof v.outcome !== "string") {
      throw new WorkflowError(`the output of step \`${this.step}\` is not a gate verdict: ${typeof v === "string" ? v : "no outcome"}`);
    }
    const findings = (Array.isArray(v.findings) ? v.findings : []).map((f) => ({ path: f.path ?? null,
      line: f.line ?? null, message: f.message ?? "", severity: f.severity }));
    return { outcome: v.outcome, summary: v.summary ?? "", evidence: v.evidence ?? "", findings };
  }
}

/**
 * The run as it stands when `decide` is called.
 * @property {Object<string, string>} vars the vars in force (defaults with `--var` applied)
 * @property {{name: string, status: string|null}[]} steps every step, in order; status null while it runs or waits
 */
export class RunView {
  constructor(v) {
    this.vars = Object.fromEntries(v.vars);
    this.steps = v.steps.map((s) => ({ name: s.name, status: s.status ?? null }));
  }
  /** @param {string} name @returns {string|null} */
  var(name) { return Object.hasOwn(this.vars, name) ? this.vars[name] : null; }
  /** @param {string} name */
  hasStep(name) { return this.steps.some((s) => s.name === name); }
}

/**
 * `text` made a valid step name: every run of characters other than letters, digits, `_` and
 * `-` becomes one `-` ("tests/a b.js" -> "tests-a-b-js").
 * @param {string} text @returns {string}
 */
export function toName(text) {
  const name = String(text).replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "");
  return name === "" ? "step" : name;
}

/**
 * Wrap the workflow's functions as the component's `plan` and `decide` exports.
 * @param {{plan: (params: Object<string, string>) => Plan,
 *   decide?: (event: StepEvent, view: RunView) => Directive[]}} fns `plan` gets the `--var`
 *   pairs (a value that is not a string is kept as its JSON text); `decide` is called each time a
 *   step ends
 * @returns {{plan: Function, decide: Function}} the WIT functions
 */
export function workflow({ plan, decide } = {}) {
  if (typeof plan !== "function") throw new TypeError("workflow({ plan, decide }): `plan` must be a function");
  if (decide != null && typeof decide !== "function") throw new TypeError("workflow({ plan, decide }): `decide` must be a function");
  return {
    plan(params) {
      try {
        return lowerPlan(synchronous(plan(parseParams(params)), "plan"));
      } catch (e) {
        throw describe(e, true); // a thrown string is the `result`'s error
      }
    },
    decide(event, view) {
      if (!decide) return [];
      try {
        const out = synchronous(decide(new StepEvent(event), new RunView(view)), "decide") ?? [];
        if (!Array.isArray(out)) throw new WorkflowError(`decide returned ${show(out)}, not an array of Directive`);
        return out.map((d, i) => lowerDirective(d, `directive ${i}`));
      } catch (e) {
        // decide has no error channel: print the message the way the host reads a guest panic,
        // then trap (the runtime prints the stack). The run fails with "the workflow component
        // panicked: MESSAGE (at WHERE)", followed by what the component printed.
        console.error(`greenlight-workflow.js: decide panicked at ${frame(e) ?? "decide"}:\n${describe(e, false).replace(/\n/g, " ")}`);
        throw e;
      }
    },
  };
}

function parseParams(json) {
  if (!json || json.trim() === "") return {};
  let object;
  try { object = JSON.parse(json); } catch (e) { throw new WorkflowError(`params are not a JSON object: ${e.message}`); }
  if (object === null || typeof object !== "object" || Array.isArray(object)) throw new WorkflowError("params are not a JSON object");
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

function synchronous(value, fn) {
  if (value && typeof value.then === "function") throw new WorkflowError(`${fn} returned a Promise; it must be synchronous`);
  return value;
}

function show(value) {
  return (typeof value === "object" && value !== null ? JSON.stringify(value) ?? String(value) : String(value)).slice(0, 200);
}

/** `file:line:col` of the first stack frame in the author's code (not this file, not the bindings), if any. */
function frame(e) {
  const frames = typeof (e && e.stack) === "string" ? e.stack.split("\n") : [];
  const first = frames.find((f) => f.includes("@") && !/greenlight-workflow\.js:|initializer\.js:/.test(f));
  return first ? first.slice(first.indexOf("@") + 1) : null;
}

/** An exception as one message: a WorkflowError, a plain Error or a string as its text, anything else with its type. */
function describe(e, withFrame) {
  if (typeof e === "string") return e;
  if (e instanceof WorkflowError || (e instanceof Error && e.constructor === Error)) return e.message;
  if (e instanceof Error) return `${e.name}: ${e.message}${withFrame && frame(e) ? ` (at ${frame(e)})` : ""}`;
  return `threw ${show(e)}`;
}

// Lowering: builders into the values componentize-js expects for the WIT types (records as
// objects with camelCase fields, variants as {tag, val}, options as undefined, enums as strings,
// tuples as arrays), checked, since a wrong value would be wrapped or trap.

function get(value, Class, what) {
  if (!(value instanceof Class)) throw new WorkflowError(`${what} must be a ${Class.name}, got ${show(value)}`);
  return value.wit;
}
const opt = (value, lower) => (value == null ? undefined : lower(value));
function int(value, min, max, what) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new WorkflowError(`${what} must be an integer from ${min} to ${max}, got ${show(value)}`);
  }
  return value;
}
const u32 = (value, what) => int(value, 0, 2 ** 32 - 1, what);
const millis = (value, what) => int(value, 0, Number.MAX_SAFE_INTEGER, `${what} (milliseconds)`);
function strings(value, what) {
  if (!Array.isArray(value)) throw new WorkflowError(`${what} must be an array of strings, got ${show(value)}`);
  return value.map(String);
}
function pairs(value, what) {
  if (!Array.isArray(value)) throw new WorkflowError(`${what} must be an array of [name, value] pairs, got ${show(value)}`);
  return value.map((p) => {
    if (!Array.isArray(p) || p.length !== 2) throw new WorkflowError(`${what} must hold [name, value] pairs, got ${show(p)}`);
    return [String(p[0]), String(p[1])];
  });
}
function oneOf(value, allowed, what) {
  if (!allowed.includes(value)) throw new WorkflowError(`${what} must be one of ${allowed.join(", ")}, got ${show(value)}`);
  return value;
}
const lowerRepair = (r, what) => ({ agent: String(r.agent), attempts: u32(r.attempts, `${what} attempts`) });

function lowerPlan(plan) {
  if (!(plan instanceof Plan)) throw new WorkflowError(`plan returned ${show(plan)}, not a Plan (use new Plan(name))`);
  const p = plan.wit;
  return {
    name: String(p.name),
    vars: pairs(p.vars, "vars"),
    maxConcurrency: opt(p.maxConcurrency, (n) => u32(n, "maxConcurrency")),
    timeoutMs: opt(p.timeoutMs, (n) => millis(n, "timeout")),
    onFailure: oneOf(p.onFailure, ["fail-fast", "continue"], "onFailure"),
    agents: p.agents.map((a, i) => lowerAgent(a, `agent ${i}`)),
    protect: strings(p.protect, "protect"),
    repair: opt(p.repair, (r) => lowerRepair(r, "repair")),
    steps: p.steps.map((s, i) => lowerStep(s, `step ${i}`)),
  };
}

function lowerAgent(agent, what) {
  const a = get(agent, Agent, what);
  what = `agent \`${a.name}\``;
  const kind = a.kind.tag === "cli" ? { tag: "cli", val: { name: String(a.kind.val.name), model: opt(a.kind.val.model, String) } }
    : { tag: "command", val: strings(a.kind.val, `${what} command`) };
  return { name: String(a.name), kind, timeoutMs: opt(a.timeoutMs, (n) => millis(n, `${what} timeout`)), env: strings(a.env, `${what} env`) };
}

function lowerStep(step, what) {
  const s = get(step, Step, what);
  what = `step \`${s.name}\``;
  const { tag, val } = s.action;
  const action = tag === "run" ? { tag, val: String(val) }
    : tag === "agent" ? { tag, val: { agent: String(val.agent), task: String(val.task) } }
    : tag === "gate" ? { tag, val: lowerGate(val, `${what} gate`) }
    : tag === "commit" ? { tag, val: lowerCommit(val, `${what} commit`) }
    : oneOf(tag, ["run", "agent", "gate", "commit"], `${what} action`);
  const r = s.repair;
  const repair = r.tag === "on" ? { tag: "on", val: lowerRepair(r.val, `${what} repair`) }
    : { tag: oneOf(r.tag, ["inherit", "off", "on"], `${what} repair`) };
  return {
    name: String(s.name),
    needs: strings(s.needs, `${what} needs`),
    action,
    timeoutMs: opt(s.timeoutMs, (n) => millis(n, `${what} timeout`)),
    retries: u32(s.retries, `${what} retries`),
    env: pairs(s.env, `${what} env`),
    cwd: opt(s.cwd, String),
    verify: s.verify.map((c, i) => lowerCheck(c, `${what} check ${i}`)),
    allowFailure: Boolean(s.allowFailure),
    repair,
    protect: strings(s.protect, `${what} protect`),
    produces: strings(s.produces, `${what} produces`),
  };
}

function lowerGate(gate, what) {
  const g = get(gate, GateRef, what);
  return {
    gate: String(g.gate),
    params: String(g.params),
    sha256: opt(g.sha256, String),
    grants: { read: strings(g.grants.read, `${what} read`), write: strings(g.grants.write, `${what} write`),
      exec: strings(g.grants.exec, `${what} exec`) },
  };
}

function lowerCommit(commit, what) {
  const c = get(commit, Commit, what);
  return { message: String(c.message), paths: strings(c.paths, `${what} paths`),
    requires: strings(c.requires, `${what} requires`), skipHooks: Boolean(c.skipHooks) };
}

function lowerCheck(check, what) {
  const { tag, val } = get(check, Check, what);
  switch (tag) {
    case "exit-code": return { tag, val: int(val, -(2 ** 31), 2 ** 31 - 1, `${what} exit code`) };
    case "gate": return { tag, val: lowerGate(val, what) };
    default: return { tag: oneOf(tag, ["output-contains", "output-matches", "file-exists"], what), val: String(val) };
  }
}

function lowerDirective(directive, what) {
  const { tag, val } = get(directive, Directive, what);
  switch (tag) {
    case "add-step": return { tag, val: { step: lowerStep(val.step, `${what} step`), requiredBy: strings(val.requiredBy, `${what} requiredBy`) } };
    case "skip-step": return { tag, val: [String(val[0]), String(val[1])] };
    case "set-output": return { tag, val: { step: String(val.step), output: String(val.output) } };
    default: return { tag: oneOf(tag, ["block"], what), val: String(val) };
  }
}
