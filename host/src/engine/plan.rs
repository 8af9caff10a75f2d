//! What can be known about a run before anything runs: the order its steps can start in
//! ([`Schedule`]), how many may run at once ([`Concurrency`]), and what each gate would be allowed
//! to do ([`decide_each`]). Nothing here runs a step or reads a component: the caller reads the
//! manifests. `greenlight plan` prints all of it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::run::DEFAULT_MAX_CONCURRENCY;
use crate::sandbox::grants::{self, ExecPattern, Grants, Missing, Mount, Requests};
use crate::spec::{GateGrants, Workflow};

/// The shape of a workflow's `needs` graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// For each step (file order), its level: 0 for a step that needs nothing, otherwise one more
    /// than the highest level among the steps it needs.
    pub level_of: Vec<usize>,
    /// Step indices by level, in file order within a level. A level's steps may all run together
    /// once the levels below it are done.
    pub levels: Vec<Vec<usize>>,
    /// One longest chain of `needs` (step indices, the first to run first): no run can take
    /// fewer steps one after another than this. Empty for a workflow without steps.
    pub critical_path: Vec<usize>,
    /// The most steps in one level.
    pub widest_level: usize,
    /// The most steps that could ever run at the same moment: the largest set of steps none of
    /// which needs another, directly or not. The engine starts a step as soon as what it needs
    /// is done (there are no waves), so steps of different levels can overlap, and this can
    /// exceed [`Schedule::widest_level`].
    pub peak: usize,
}

impl Schedule {
    pub fn of(workflow: &Workflow) -> Schedule {
        let deps = dependencies(workflow);
        let level_of = workflow.levels();
        let levels = group_by_level(&level_of);
        let critical_path = critical_path(&deps, &level_of);
        let widest_level = levels.iter().map(Vec::len).max().unwrap_or(0);
        let peak = peak_parallelism(&deps);
        Schedule { level_of, levels, critical_path, widest_level, peak }
    }

    /// The number of levels (the length of the critical path).
    pub fn depth(&self) -> usize {
        self.levels.len()
    }
}

/// For each step, the indices of the steps it needs (unknown names are skipped: a validated
/// workflow has none).
pub fn dependencies(workflow: &Workflow) -> Vec<Vec<usize>> {
    workflow
        .steps
        .iter()
        .map(|step| {
            step.needs.iter().filter_map(|need| workflow.steps.iter().position(|s| &s.name == need)).collect()
        })
        .collect()
}

/// Step indices grouped by level, in index order within each level.
pub fn group_by_level(level_of: &[usize]) -> Vec<Vec<usize>> {
    let depth = level_of.iter().max().map_or(0, |l| l + 1);
    let mut levels = vec![Vec::new(); depth];
    for (step, &level) in level_of.iter().enumerate() {
        levels[level].push(step);
    }
    levels
}

/// One longest chain, ending at the first step (in file order) of the highest level and going
/// down through the first need (in `needs` order) one level below each time.
pub fn critical_path(deps: &[Vec<usize>], level_of: &[usize]) -> Vec<usize> {
    let Some(top) = level_of.iter().max() else { return Vec::new() };
    let mut current = level_of.iter().position(|l| l == top).expect("the maximum is in the list");
    let mut path = vec![current];
    while level_of[current] > 0 {
        let below = level_of[current] - 1;
        current = *deps[current]
            .iter()
            .find(|&&d| level_of[d] == below)
            .expect("a step above level 0 needs a step one level below");
        path.push(current);
    }
    path.reverse();
    path
}

/// The size of the largest set of steps no two of which are ordered by `needs` (directly or
/// not). By Dilworth's theorem it is the number of steps minus a maximum matching between
/// "runs before" pairs of the transitive closure. `deps` must be acyclic.
pub fn peak_parallelism(deps: &[Vec<usize>]) -> usize {
    let n = deps.len();
    let closure = ancestors(deps);
    // Kuhn's augmenting paths: left i -> right j when step j must finish before step i.
    let mut matched_to: Vec<Option<usize>> = vec![None; n];
    let mut matching = 0;
    for left in 0..n {
        let mut seen = vec![false; n];
        if augment(left, &closure, &mut matched_to, &mut seen) {
            matching += 1;
        }
    }
    n - matching
}

fn augment(left: usize, closure: &[Vec<bool>], matched_to: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    for right in 0..closure.len() {
        if !closure[left][right] || seen[right] {
            continue;
        }
        seen[right] = true;
        let free = match matched_to[right] {
            None => true,
            Some(other) => augment(other, closure, matched_to, seen),
        };
        if free {
            matched_to[right] = Some(left);
            return true;
        }
    }
    false
}

/// `closure[i][j]`: step `j` must finish before step `i` can start (directly or not).
fn ancestors(deps: &[Vec<usize>]) -> Vec<Vec<bool>> {
    let n = deps.len();
    let mut closure: Vec<Option<Vec<bool>>> = vec![None; n];
    for start in 0..n {
        // Depth-first, children first; the graph is acyclic.
        let mut stack = vec![(start, false)];
        while let Some((i, expanded)) = stack.pop() {
            if closure[i].is_some() {
                continue;
            }
            if expanded {
                let mut row = vec![false; n];
                for &d in &deps[i] {
                    row[d] = true;
                    if let Some(below) = &closure[d] {
                        row.iter_mut().zip(below).for_each(|(r, b)| *r |= *b);
                    }
                }
                closure[i] = Some(row);
            } else {
                stack.push((i, true));
                stack.extend(deps[i].iter().filter(|&&d| closure[d].is_none()).map(|&d| (d, false)));
            }
        }
    }
    closure.into_iter().map(|row| row.unwrap_or_else(|| vec![false; n])).collect()
}

/// Where the concurrency limit in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    /// `--max-concurrency`.
    Flag,
    /// The workflow's `max_concurrency`.
    Workflow,
    /// Neither: [`DEFAULT_MAX_CONCURRENCY`].
    Default,
}

impl LimitSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSource::Flag => "flag",
            LimitSource::Workflow => "workflow",
            LimitSource::Default => "default",
        }
    }
}

/// How many steps may run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    pub limit: usize,
    pub source: LimitSource,
}

impl Concurrency {
    /// The command line's limit wins over the workflow's, which wins over the engine's default
    /// (as [`super::run::run`] decides it).
    pub fn of(workflow: &Workflow, flag: Option<usize>) -> Concurrency {
        match (flag, workflow.max_concurrency) {
            (Some(n), _) => Concurrency { limit: n.max(1), source: LimitSource::Flag },
            (None, Some(n)) => Concurrency { limit: n.max(1), source: LimitSource::Workflow },
            (None, None) => Concurrency { limit: DEFAULT_MAX_CONCURRENCY, source: LimitSource::Default },
        }
    }

    /// The most steps that would actually run at once: the limit, or fewer when the graph never
    /// has that many ready together.
    pub fn at_most(&self, schedule: &Schedule) -> usize {
        self.limit.min(schedule.peak)
    }
}

/// One requested capability and whether the grants cover it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// `read`, `write` or `exec`.
    pub kind: &'static str,
    /// As the manifest writes it (a guest path or an exec pattern).
    pub request: String,
    pub outcome: Result<Granted, Missing>,
}

/// What a granted request gives the component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Granted {
    Mount(Mount),
    Exec(ExecPattern),
}

impl fmt::Display for Granted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Granted::Mount(m) => write!(
                f,
                "{} as {} ({})",
                m.host.display(),
                m.guest,
                if m.writable { "read-write" } else { "read-only" }
            ),
            Granted::Exec(p) => write!(f, "'{p}'"),
        }
    }
}

/// [`grants::decide`] for each request on its own, so the ones that are granted and the ones
/// that are not are both known (the sandbox refuses the whole component if any is missing).
pub fn decide_each(requests: &Requests, grants: &Grants, workspace: &Path) -> Vec<Decision> {
    let one = |request: Requests| grants::decide(&request, grants, workspace);
    let mut decisions = Vec::new();
    for path in &requests.read {
        let outcome = one(Requests { read: vec![path.clone()], ..Requests::default() });
        decisions.push(decision("read", path.clone(), outcome.map(|e| Granted::Mount(e.mounts[0].clone()))));
    }
    for path in &requests.write {
        let outcome = one(Requests { write: vec![path.clone()], ..Requests::default() });
        decisions.push(decision("write", path.clone(), outcome.map(|e| Granted::Mount(e.mounts[0].clone()))));
    }
    for pattern in &requests.exec {
        let outcome = one(Requests { exec: vec![pattern.clone()], ..Requests::default() });
        decisions.push(decision(
            "exec",
            pattern.to_string(),
            outcome.map(|e| Granted::Exec(e.exec[0].clone())),
        ));
    }
    decisions
}

fn decision(kind: &'static str, request: String, outcome: Result<Granted, grants::NotGranted>) -> Decision {
    let outcome = outcome.map_err(|mut not| not.0.remove(0));
    Decision { kind, request, outcome }
}

/// A step's `grants:` in the sandbox's terms, resolved as a run resolves them
/// (`super::gates`): paths relative to the workspace joined to it, exec patterns parsed. Patterns
/// that do not parse (a run refuses to start over them) are returned as messages and left out.
pub fn workflow_grants(granted: &GateGrants, workspace: &Path) -> (Grants, Vec<String>) {
    let absolute = |path: &PathBuf| if path.is_absolute() { path.clone() } else { workspace.join(path) };
    let mut problems = Vec::new();
    let mut exec = Vec::new();
    for text in &granted.exec {
        match ExecPattern::parse(text) {
            Ok(pattern) => exec.push(pattern),
            Err(e) => problems.push(format!("`grants.exec`: {e}")),
        }
    }
    let grants = Grants {
        read: granted.read.iter().map(absolute).collect(),
        write: granted.write.iter().map(absolute).collect(),
        exec,
    };
    (grants, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow(yaml: &str) -> Workflow {
        crate::spec::parse(yaml, "w.yaml").unwrap()
    }

    fn names(w: &Workflow, indices: &[usize]) -> Vec<String> {
        indices.iter().map(|&i| w.steps[i].name.clone()).collect()
    }

    #[test]
    fn steps_are_grouped_by_level_in_file_order() {
        let w = workflow(
            "version: 1\nsteps:\n\
             - { name: d, needs: [b, c], run: x }\n\
             - { name: a, run: x }\n\
             - { name: b, needs: [a], run: x }\n\
             - { name: c, run: x }\n\
             - { name: e, needs: [a], run: x }\n",
        );
        let s = Schedule::of(&w);
        let levels: Vec<Vec<String>> = s.levels.iter().map(|l| names(&w, l)).collect();
        assert_eq!(levels, [vec!["a", "c"], vec!["b", "e"], vec!["d"]]);
        assert_eq!(names(&w, &s.critical_path), ["a", "b", "d"]);
        // b, c and e need none of each other: three can run at once.
        assert_eq!((s.depth(), s.widest_level, s.peak), (3, 2, 3));
    }

    #[test]
    fn a_workflow_without_steps_has_an_empty_schedule() {
        assert_eq!(group_by_level(&[]), Vec::<Vec<usize>>::new());
        assert_eq!(critical_path(&[], &[]), Vec::<usize>::new());
        assert_eq!(peak_parallelism(&[]), 0);
    }

    #[test]
    fn the_peak_counts_steps_of_different_levels_that_can_overlap() {
        // p0 -> p1 -> p2, q0 -> q1, r needs p0, s needs nothing. Levels: {p0 q0 s} {p1 q1 r} {p2},
        // but p2, q1, r and s need none of each other: four can run at once.
        let deps = vec![vec![], vec![0], vec![1], vec![], vec![3], vec![0], vec![]];
        assert_eq!(group_by_level(&[0, 1, 2, 0, 1, 1, 0]).iter().map(Vec::len).max(), Some(3));
        assert_eq!(peak_parallelism(&deps), 4);
        // A chain never overlaps; independent steps all do.
        assert_eq!(peak_parallelism(&[vec![], vec![0], vec![1]]), 1);
        assert_eq!(peak_parallelism(&[vec![], vec![], vec![]]), 3);
        // A diamond: the two middle steps.
        assert_eq!(peak_parallelism(&[vec![], vec![0], vec![0], vec![1, 2]]), 2);
    }

    #[test]
    fn the_flag_wins_over_the_workflow_and_the_graph_bounds_both() {
        let w = workflow(
            "version: 1\nmax_concurrency: 4\nsteps:\n- { name: a, run: x }\n- { name: b, run: x }\n",
        );
        let s = Schedule::of(&w);
        let c = Concurrency::of(&w, None);
        assert_eq!((c.limit, c.source, c.at_most(&s)), (4, LimitSource::Workflow, 2));
        let c = Concurrency::of(&w, Some(1));
        assert_eq!((c.limit, c.source, c.at_most(&s)), (1, LimitSource::Flag, 1));
        let w = workflow("version: 1\nsteps:\n- { name: a, run: x }\n");
        let c = Concurrency::of(&w, None);
        assert_eq!((c.limit, c.source), (DEFAULT_MAX_CONCURRENCY, LimitSource::Default));
    }

    #[test]
    fn each_request_is_decided_on_its_own() {
        let ws = Path::new("/w");
        let requests = Requests {
            read: vec![".".into()],
            write: vec!["out".into()],
            exec: vec![ExecPattern::parse("git status **").unwrap(), ExecPattern::parse("curl **").unwrap()],
        };
        let grants = Grants {
            read: vec![ws.into()],
            write: vec![],
            exec: vec![ExecPattern::parse("git **").unwrap()],
        };
        let decisions = decide_each(&requests, &grants, ws);
        let summary: Vec<(&str, &str, bool)> =
            decisions.iter().map(|d| (d.kind, d.request.as_str(), d.outcome.is_ok())).collect();
        assert_eq!(
            summary,
            [
                ("read", ".", true),
                ("write", "out", false),
                ("exec", "git status **", true),
                ("exec", "curl **", false)
            ]
        );
        assert_eq!(decisions[1].outcome.as_ref().unwrap_err().flag, "--grant-write /w/out");
        assert_eq!(decisions[0].outcome.as_ref().unwrap().to_string(), "/w as . (read-only)");
    }

    #[test]
    fn workflow_grants_are_relative_to_the_workspace() {
        let g = GateGrants {
            read: vec!["docs".into(), "/etc".into()],
            write: vec!["build".into()],
            exec: vec!["git diff **".into(), "* oops".into()],
        };
        let (grants, problems) = workflow_grants(&g, Path::new("/no/such/ws"));
        assert_eq!(grants.read, [PathBuf::from("/no/such/ws/docs"), PathBuf::from("/etc")]);
        assert_eq!(grants.write, [PathBuf::from("/no/such/ws/build")]);
        assert_eq!(grants.exec, [ExecPattern::parse("git diff **").unwrap()]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("the program must be named"), "{problems:?}");
    }
}
