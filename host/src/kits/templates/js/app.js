// {{name}}: passes when every file named in `paths` exists in the workspace.
//
// JavaScript gates have no filesystem API: this one runs `test -e PATH` through the host, which
// gate.toml asks for (`exec = ["test -e *"]`). A GateError becomes an `error` verdict.
import { Finding, GateError, Verdict, gate, runProcess } from "./greenlight-gate.js";

export const verify = gate((params) => {
  // `--param paths=README.md` arrives as one string, `paths=[a, b]` as a list.
  const paths = typeof params.paths === "string" ? [params.paths] : params.paths;
  if (!Array.isArray(paths) || paths.length === 0) {
    throw new GateError("`paths` must name at least one file");
  }
  const missing = [];
  for (const path of paths) {
    if (typeof path !== "string" || path.startsWith("/") || path.split("/").includes("..")) {
      throw new GateError(`${JSON.stringify(path)} is not a path inside the workspace`);
    }
    if (runProcess("test", ["-e", path]).exitCode !== 0) missing.push(path);
  }
  if (missing.length === 0) return Verdict.pass(`all ${paths.length} files exist`);
  return Verdict.fail(`missing: ${missing.join(", ")}`, {
    findings: missing.map((p) => Finding.error(`${p} does not exist`, { path: p })),
  });
});
