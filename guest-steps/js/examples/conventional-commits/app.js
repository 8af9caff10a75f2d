// conventional-commits: passes when every commit message in a range follows Conventional Commits
// (https://www.conventionalcommits.org): `type(scope)!: description`, with the scope and the `!`
// optional and the type one of the `types` parameter (compared case-insensitively).
//
// The range is BASE..HEAD when `base` is given, else the last `max` commits of HEAD; merge
// commits are left out. Each offending commit is one `error` finding: its short sha, its subject
// and what is wrong with it.
import { gate, Verdict, Finding, GateError, runOk } from "./greenlight-gate.js";

const DEFAULT_TYPES = ["feat", "fix", "docs", "style", "refactor", "perf", "test", "build", "ci", "chore", "revert"];
const DEFAULT_MAX = 20;

// Exactly the commands declared in gate.toml `[capabilities] exec`.
const GIT_LOG = ["--no-optional-locks", "-c", "core.fsmonitor=false", "log", "--no-merges", "--format=%h%x1f%s"];

/** Most commits listed in the findings and the evidence (the host bounds a verdict's size). */
const MAX_LISTED = 200;

/** `type`, optional `(scope)`, optional `!`, then `:` and the rest. */
const HEADER = /^([A-Za-z][\w-]*)(?:\(([^()]*)\))?(!)?:(.*)$/;

/** What is wrong with a commit subject, or null when it follows Conventional Commits. */
function problem(subject, types) {
  if (subject.trim() === "") return "the message is empty";
  const m = HEADER.exec(subject);
  if (!m) return "does not start with `type: `, `type(scope): ` or `type!: `";
  const [, type, scope, , rest] = m;
  if (!types.includes(type.toLowerCase())) return `type \`${type}\` is not one of ${types.join(", ")}`;
  if (scope !== undefined && scope.trim() === "") return "the scope `()` is empty";
  if (!rest.startsWith(" ")) return "needs a space after the colon";
  if (rest.trim() === "") return "has no description after the colon";
  return null;
}

function checkParams(params) {
  let types = params.types ?? DEFAULT_TYPES;
  if (typeof types === "string") types = types.split(/[\s,]+/).filter(Boolean); // "feat, fix"
  if (!Array.isArray(types) || types.length === 0 || !types.every((t) => typeof t === "string" && /^[A-Za-z][\w-]*$/.test(t))) {
    throw new GateError(`\`types\` must be a non-empty list of words such as ["feat", "fix"], got ${JSON.stringify(params.types)}`);
  }
  const max = params.max ?? DEFAULT_MAX;
  if (!Number.isInteger(max) || max < 1 || max > 10000) {
    throw new GateError(`\`max\` must be a whole number from 1 to 10000, got ${JSON.stringify(params.max)}`);
  }
  const base = params.base ?? null;
  if (base !== null) {
    if (typeof base !== "string" || base === "") throw new GateError("`base` must be a git revision such as `main`");
    if (base.startsWith("-")) throw new GateError(`\`base\` ${JSON.stringify(base)} starts with '-'; refused, as git could read it as an option`);
    if (base.includes("..")) throw new GateError(`\`base\` ${JSON.stringify(base)} is a range; give a single revision such as \`main\``);
    if (/[\x00-\x20\x7f]/.test(base)) throw new GateError(`\`base\` ${JSON.stringify(base)} contains a space or a control character`);
  }
  return { types: types.map((t) => t.toLowerCase()), max, base };
}

export const verify = gate((params) => {
  const { types, max, base } = checkParams(params);
  const range = base === null ? `HEAD, up to ${max} commits back` : `${base}..HEAD`;
  const args = base === null ? [...GIT_LOG, "-n", String(max)] : [...GIT_LOG, "--end-of-options", `${base}..HEAD`, "--"];
  let out;
  try {
    out = runOk("git", args);
  } catch (e) {
    throw new GateError(`cannot list ${range}: ${e.message.split("\n").map((l) => l.trim()).filter(Boolean).join(" ")}`);
  }

  const commits = out.split("\n").filter((line) => line !== "").map((line) => {
    const sep = line.indexOf("\x1f");
    if (sep < 0) throw new GateError(`unexpected \`git log\` line: ${JSON.stringify(line)}`);
    return { sha: line.slice(0, sep), subject: line.slice(sep + 1) };
  });
  const bad = commits.map((c) => ({ ...c, why: problem(c.subject, types) })).filter((c) => c.why !== null);

  const evidence = [
    `Commits checked (${range}, merges left out): ${commits.length}`,
    ...commits.slice(0, MAX_LISTED).map((c) => `  ${problem(c.subject, types) === null ? "ok " : "BAD"} ${c.sha} ${c.subject}`),
    ...(commits.length > MAX_LISTED ? [`  ... and ${commits.length - MAX_LISTED} more`] : []),
    "",
    "A Conventional Commits subject is `type(scope)!: description`, e.g. `fix(parser): accept empty input`;",
    `the scope and the \`!\` (a breaking change) are optional. Allowed types: ${types.join(", ")}.`,
  ].join("\n");

  if (commits.length === 0) return Verdict.pass(`no commits to check in ${range}`, { evidence });
  if (bad.length === 0) {
    const n = commits.length === 1 ? "the 1 commit follows" : `all ${commits.length} commits follow`;
    return Verdict.pass(`${n} Conventional Commits (${range})`, { evidence });
  }
  const findings = bad.slice(0, MAX_LISTED).map((c) => Finding.error(`${c.sha} "${c.subject}": ${c.why}`));
  if (bad.length > MAX_LISTED) findings.push(Finding.error(`${bad.length - MAX_LISTED} more offending commits not listed`));
  const shas = bad.slice(0, 5).map((c) => c.sha).join(", ") + (bad.length > 5 ? ` and ${bad.length - 5} more` : "");
  const noun = `${commits.length === 1 ? "commit" : "commits"} ${bad.length === 1 ? "does" : "do"}`;
  return Verdict.fail(`${bad.length} of ${commits.length} ${noun} not follow Conventional Commits: ${shas}`, { findings, evidence });
});
