// greenlight-gate.js: write a greenlight gate in JavaScript (gate API greenlight:gate@0.1.0).
//
// Vendor this file beside your app.js and build with `greenlight gate build DIR -o gate.wasm`
// (componentize-js 0.23). The canonical copy is guest-steps/js/greenlight-gate.js.
//
//   import { gate, Verdict, Finding, runProcess, GateError } from "./greenlight-gate.js";
//   export const verify = gate((params, step) => {
//     const out = runOk("git", ["status", "--porcelain"]);
//     if (out === "") return Verdict.pass("the work tree is clean");
//     return Verdict.fail("the work tree has changes", { evidence: out });
//   });
//
// A `GateError` thrown by the gate becomes an `error` verdict with its message; any other
// exception becomes an `error` verdict with the stack as evidence. A gate never traps.

import { run as witRun } from "greenlight:gate/process@0.1.0";
import { log as witLog } from "greenlight:gate/log@0.1.0";

/** A problem that keeps the gate from deciding; becomes an `error` verdict with this message. */
export class GateError extends Error {
  constructor(message) {
    super(message);
    this.name = "GateError";
  }
}

/**
 * One thing a gate found, optionally tied to a workspace-relative file and 1-based line.
 * @typedef {{path?: string|null, line?: number|null}} Where
 */
export class Finding {
  /** @param {"info"|"warning"|"error"} severity @param {string} message @param {Where} [where] */
  constructor(severity, message, { path = null, line = null } = {}) {
    Object.assign(this, { severity, message: String(message), path, line });
  }
  /** @param {string} message @param {Where} [where] */
  static error(message, where) { return new Finding("error", message, where); }
  /** @param {string} message @param {Where} [where] */
  static warning(message, where) { return new Finding("warning", message, where); }
  /** @param {string} message @param {Where} [where] */
  static info(message, where) { return new Finding("info", message, where); }
}

/**
 * A gate's decision: `pass`, `fail` or `error`, a one-line summary, findings and free-text
 * evidence (what a person or a repair agent reads to understand the verdict).
 * @typedef {{findings?: Finding[], evidence?: string}} Details
 */
export class Verdict {
  /** @param {"pass"|"fail"|"error"} outcome @param {string} summary @param {Details} [details] */
  constructor(outcome, summary, { findings = [], evidence = "" } = {}) {
    Object.assign(this, { outcome, summary: String(summary), findings, evidence: String(evidence) });
  }
  /** @param {string} summary @param {Details} [details] */
  static pass(summary, details) { return new Verdict("pass", summary, details); }
  /** @param {string} summary @param {Details} [details] */
  static fail(summary, details) { return new Verdict("fail", summary, details); }
  /** @param {string} summary @param {Details} [details] */
  static error(summary, details) { return new Verdict("error", summary, details); }
}

/**
 * Run a program the gate declared in gate.toml `[capabilities] exec` and the caller granted.
 * @param {string} program e.g. "git"
 * @param {string[]} args each must match the declared pattern exactly
 * @returns {{exitCode: number|null, stdout: string, stderr: string, truncated: boolean, timedOut: boolean}}
 *   `exitCode` is null when the program was killed (timeout, output limit)
 * @throws {GateError} when the call is denied or the program could not be started
 */
export function runProcess(program, args = []) {
  let out;
  try {
    out = witRun(String(program), args.map(String));
  } catch (e) {
    const err = e && e.payload !== undefined ? e.payload : e; // a WIT `result` error
    const cmd = [program, ...args].join(" ");
    // `denied` text from the host already names the command and the missing grant.
    throw new GateError(err && err.tag === "denied" ? `denied: ${err.val}`
      : `\`${cmd}\` could not be started: ${err && err.tag ? err.val : err}`);
  }
  return {
    exitCode: out.exitCode ?? null,
    stdout: out.stdout,
    stderr: out.stderr,
    truncated: out.truncated,
    timedOut: out.timedOut,
  };
}

/**
 * Run a program and return its stdout; throw a GateError quoting its stderr unless it exited
 * 0 with nothing cut.
 * @param {string} program @param {string[]} args @returns {string}
 */
export function runOk(program, args = []) {
  const out = runProcess(program, args);
  if (out.exitCode === 0 && !out.truncated && !out.timedOut) return out.stdout;
  const why = out.timedOut ? "timed out" : out.truncated ? "output went over the host's limit"
    : out.exitCode === null ? "killed" : `exit code ${out.exitCode}`;
  throw new GateError(`\`${[program, ...args].join(" ")}\` failed (${why}): ${out.stderr.trim()}`);
}

/**
 * A message for the person running the gate (debug messages show only in --json output).
 * @param {"debug"|"info"|"warn"|"error"} level @param {string} message
 */
export function log(level, message) {
  witLog(["debug", "info", "warn", "error"].includes(level) ? level : "info", String(message));
}

/**
 * Wrap a gate function as the component's `verify` export.
 * @param {(params: Object<string, any>, step: {exitCode: number|null, output: string,
 *   outputTruncated: boolean}|null) => Verdict} fn gets the parameters (a plain object) and the
 *   step under verification (null when the gate is not verifying a step)
 * @returns {(input: {params: string, step?: object}) => object} the WIT `verify` function
 */
export function gate(fn) {
  return function verify(input) {
    try {
      let params;
      try {
        params = JSON.parse(input.params || "{}");
      } catch (e) {
        throw new GateError(`parameters are not JSON: ${e.message}`);
      }
      if (params === null || typeof params !== "object" || Array.isArray(params)) {
        throw new GateError("parameters are not a JSON object");
      }
      const s = input.step;
      const step = s == null ? null
        : { exitCode: s.exitCode ?? null, output: s.output, outputTruncated: s.outputTruncated };
      return toWit(fn(params, step));
    } catch (e) {
      return toWit(e instanceof GateError ? Verdict.error(e.message)
        : Verdict.error(`the gate threw ${e && e.name ? e.name : "an exception"}: ${e && e.message !== undefined ? e.message : e}`,
          { evidence: String((e && e.stack) || e) }));
    }
  };
}

const OUTCOMES = ["pass", "fail", "error"];
const SEVERITIES = ["info", "warning", "error"];

/** The verdict as the WIT record componentize-js lowers (enums as strings, none as undefined). */
function toWit(v) {
  if (v && typeof v.then === "function") {
    throw new GateError("the gate function returned a Promise; it must be synchronous (host calls are)");
  }
  if (!(v instanceof Verdict) || !OUTCOMES.includes(v.outcome)) {
    const what = (typeof v === "object" ? JSON.stringify(v) : String(v)).slice(0, 200);
    throw new GateError(`the gate returned ${what}, not a Verdict (use Verdict.pass/fail/error)`);
  }
  if (!Array.isArray(v.findings)) throw new GateError("a Verdict's `findings` must be an array of Finding");
  return {
    outcome: v.outcome,
    summary: v.summary,
    evidence: v.evidence,
    findings: v.findings.map((f) => ({
      severity: SEVERITIES.includes(f.severity) ? f.severity : "error",
      message: String(f.message),
      path: f.path == null ? undefined : String(f.path),
      line: Number.isInteger(f.line) && f.line >= 0 && f.line < 2 ** 32 ? f.line : undefined,
    })),
  };
}
