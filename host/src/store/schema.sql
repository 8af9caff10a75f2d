-- greenlight's run store, schema 1. Times are Unix milliseconds.

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    -- The workflow file as the user named it, and as an absolute path (what resume reads).
    file             TEXT NOT NULL,
    file_path        TEXT NOT NULL,
    -- For a relay.yaml with several workflows: the one that runs.
    selected         TEXT,
    -- The definition this run follows (updated when a resume accepts changes).
    definition       TEXT NOT NULL,
    definition_hash  TEXT NOT NULL,
    -- JSON object: the vars after --var.
    vars             TEXT NOT NULL,
    -- --max-concurrency, when given.
    max_concurrency  INTEGER,
    workspace        TEXT NOT NULL,
    run_dir          TEXT NOT NULL,
    -- running | succeeded | failed | blocked | needs_human | cancelled | interrupted
    status           TEXT NOT NULL,
    reason           TEXT,
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    -- 1, plus one per resume.
    sessions         INTEGER NOT NULL DEFAULT 1,
    runner_pid       INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    commit_sha       TEXT,
    blocked_artifact TEXT,
    -- `run --from`: the run whose results were reused.
    reused_from      TEXT,
    -- JSON: what the person running an untrusted workflow granted (NULL: a trusted run).
    grants           TEXT,
    -- For a workflow written as a component: the sha256 of the .wasm that planned it.
    component_sha256 TEXT
) STRICT;

CREATE TABLE steps (
    run_id           TEXT NOT NULL REFERENCES runs(id),
    name             TEXT NOT NULL,
    position         INTEGER NOT NULL,
    -- The step's own definition (and its agents'), for telling what a changed file changed.
    definition_hash  TEXT NOT NULL,
    -- pending | running | succeeded | failed | timed_out | cancelled | skipped | needs_human
    -- | blocked | removed
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    repairs          INTEGER NOT NULL DEFAULT 0,
    started_at       INTEGER,
    finished_at      INTEGER,
    duration_ms      INTEGER,
    exit_code        INTEGER,
    reason           TEXT,
    -- What later steps' templates see (kept for succeeded steps, empty output included).
    output           TEXT,
    log              TEXT,
    -- JSON: tokens and cost.
    usage            TEXT,
    -- Its result was taken from this earlier run (`run --from`).
    reused_from      TEXT,
    PRIMARY KEY (run_id, name)
) STRICT;

CREATE TABLE attempts (
    run_id           TEXT NOT NULL REFERENCES runs(id),
    step             TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    session          INTEGER NOT NULL,
    what             TEXT NOT NULL,
    log              TEXT,
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    -- running, then a step status; `lost` when the runner died while it ran.
    status           TEXT NOT NULL,
    exit_code        INTEGER,
    reason           TEXT,
    -- JSON array: the verdicts of its checks.
    checks           TEXT,
    duration_ms      INTEGER,
    PRIMARY KEY (run_id, step, attempt)
) STRICT;

-- Every process group a run started, so a runner that died leaves nothing running unnoticed.
CREATE TABLE processes (
    id               INTEGER PRIMARY KEY,
    run_id           TEXT NOT NULL REFERENCES runs(id),
    step             TEXT NOT NULL,
    what             TEXT NOT NULL,
    pgid             INTEGER NOT NULL,
    -- The leader's start time (clock ticks after boot), so a reused pid is never signalled.
    start_ticks      INTEGER,
    ended            INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    run_id           TEXT NOT NULL REFERENCES runs(id),
    session          INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    -- The event as `greenlight run --json` prints it.
    body             TEXT NOT NULL
) STRICT;

CREATE INDEX events_by_run ON events (run_id, id);
CREATE INDEX processes_by_run ON processes (run_id, ended);

-- What a workflow component's `decide` answered when a step ended, in the order it answered:
-- a resumed run replays these instead of asking again.
CREATE TABLE decisions (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    session    INTEGER NOT NULL,
    -- The step whose ending was decided on.
    step       TEXT NOT NULL,
    -- JSON array of directives.
    directives TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;
