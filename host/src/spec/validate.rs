//! Cross-references between the parts of a workflow: step names, `needs` (unknown, cyclic),
//! agents, and what templates refer to. Works on an [`Outline`] that [`super::parse`] records
//! for every step it saw, converted or not, so one broken step does not hide the others'
//! problems or cause false ones.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::error::{Collector, SpecErrors, did_you_mean};
use super::model::{Action, Check, Location, Workflow};
use super::template::{self, Part, Reference};

/// What validation needs to know about a workflow, with locations.
#[derive(Default)]
pub(super) struct Outline {
    /// Declared var names.
    pub vars: Vec<String>,
    /// Defined agent names.
    pub agents: Vec<String>,
    /// Every step, in file order.
    pub steps: Vec<StepOutline>,
}

#[derive(Default)]
pub(super) struct StepOutline {
    pub name: Option<(String, Location)>,
    pub location: Location,
    /// Without repeats.
    pub needs: Vec<(String, Location)>,
    /// A commit step's `requires` (which order it like `needs`), without repeats.
    pub requires: Vec<(String, Location)>,
    pub agent: Option<(String, Location)>,
    /// Values that may hold `{{ ... }}` expressions.
    pub templates: Vec<TemplateSite>,
}

/// A value that is a template, and where its text is.
pub(super) struct TemplateSite {
    /// What the value is, for messages: `run`, `task`, `cwd`, ``env `X` ``, `with.paths[0]`.
    pub field: String,
    pub text: String,
    /// Where the value starts.
    pub location: Location,
    /// The byte offset in the file where the value's text is (for a value written through an
    /// alias, where it is defined).
    pub byte_offset: Option<usize>,
}

pub(super) fn check(outline: &Outline, source: &str, errors: &mut Collector) {
    let Graph { index, edges } = graph(outline, errors);
    check_needs(outline, &index, errors);
    check_cycles(outline, &edges, errors);
    check_agents(outline, errors);
    check_templates(outline, &index, &edges, source, errors);
}

/// Steps by name (the first of each name) and the `needs` edges between known steps.
struct Graph<'a> {
    index: BTreeMap<&'a str, usize>,
    /// For each step, the steps it needs (known ones, not itself), with where each is named.
    edges: Vec<Vec<(usize, Location)>>,
}

fn graph<'a>(outline: &'a Outline, errors: &mut Collector) -> Graph<'a> {
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, step) in outline.steps.iter().enumerate() {
        let Some((name, at)) = &step.name else { continue };
        match index.get(name.as_str()) {
            None => {
                index.insert(name, i);
            }
            Some(&first) => {
                let first_at =
                    outline.steps[first].name.as_ref().map_or(outline.steps[first].location, |n| n.1);
                errors.at(
                    *at,
                    format!(
                        "a second step is named `{name}` (the first is on line {}): step names must be unique",
                        first_at.line
                    ),
                );
            }
        }
    }
    let edges = outline
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            step.needs
                .iter()
                .chain(&step.requires)
                .filter_map(|(need, at)| index.get(need.as_str()).map(|&j| (j, *at)))
                .filter(|&(j, _)| j != i)
                .collect()
        })
        .collect();
    Graph { index, edges }
}

fn step_label(step: &StepOutline) -> String {
    match &step.name {
        Some((name, _)) => format!("step `{name}`"),
        None => "this step".to_owned(),
    }
}

fn check_needs(outline: &Outline, index: &BTreeMap<&str, usize>, errors: &mut Collector) {
    for step in &outline.steps {
        let own = step.name.as_ref().map(|n| n.0.as_str());
        for (required, at) in &step.requires {
            if Some(required.as_str()) == own {
                errors.at(
                    *at,
                    format!("{} requires itself: list the gates it commits after", step_label(step)),
                );
            } else if !index.contains_key(required.as_str()) {
                errors.at(
                    *at,
                    format!(
                        "{} requires `{required}`, which is not a step{}",
                        step_label(step),
                        did_you_mean(required, index.keys().copied().filter(|n| Some(*n) != own))
                    ),
                );
            }
        }
        for (need, at) in &step.needs {
            if Some(need.as_str()) == own {
                errors
                    .at(*at, format!("{} needs itself: remove `{need}` from its `needs`", step_label(step)));
            } else if !index.contains_key(need.as_str()) {
                errors.at(
                    *at,
                    format!(
                        "{} needs `{need}`, which is not a step{}",
                        step_label(step),
                        did_you_mean(need, index.keys().copied().filter(|n| Some(*n) != own))
                    ),
                );
            }
        }
    }
}

/// Reports each cycle of `needs` once, as `a -> b -> a` (each step needs the next), starting at
/// the step that comes first in the file.
fn check_cycles(outline: &Outline, edges: &[Vec<(usize, Location)>], errors: &mut Collector) {
    let n = edges.len();
    // Kahn's algorithm: whatever never becomes ready is on a cycle or depends on one.
    let mut waiting: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut needed_by: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, deps) in edges.iter().enumerate() {
        for &(j, _) in deps {
            needed_by[j].push(i);
        }
    }
    let mut ready: VecDeque<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut done = vec![false; n];
    while let Some(i) = ready.pop_front() {
        done[i] = true;
        for &k in &needed_by[i] {
            waiting[k] -= 1;
            if waiting[k] == 0 {
                ready.push_back(k);
            }
        }
    }

    // From a stuck step, following a stuck dependency always finds another stuck step, so the
    // walk ends on a cycle. `seen` marks steps whose walk is finished (as part of a reported
    // cycle, or leading into one).
    let mut seen = vec![false; n];
    for start in 0..n {
        if done[start] || seen[start] {
            continue;
        }
        let mut path: Vec<usize> = Vec::new();
        let mut position: BTreeMap<usize, usize> = BTreeMap::new();
        let mut current = start;
        let cycle = loop {
            if seen[current] {
                break None;
            }
            if let Some(&p) = position.get(&current) {
                break Some(path[p..].to_vec());
            }
            position.insert(current, path.len());
            path.push(current);
            match edges[current].iter().find(|(j, _)| !done[*j]) {
                Some(&(next, _)) => current = next,
                None => break None,
            }
        };
        for &i in &path {
            seen[i] = true;
        }
        let Some(mut cycle) = cycle else { continue };
        let first = cycle.iter().enumerate().min_by_key(|(_, i)| **i).map_or(0, |(p, _)| p);
        cycle.rotate_left(first);
        let name = |i: usize| outline.steps[i].name.as_ref().map_or("?", |n| n.0.as_str());
        let mut names: Vec<&str> = cycle.iter().map(|&i| name(i)).collect();
        names.push(name(cycle[0]));
        let second = cycle.get(1).copied().unwrap_or(cycle[0]);
        let at = edges[cycle[0]]
            .iter()
            .find(|(j, _)| *j == second)
            .map_or(outline.steps[cycle[0]].location, |e| e.1);
        errors.at(
            at,
            format!(
                "dependency cycle: {} (each step needs the next), so none of them can start: remove one of these needs",
                names.join(" -> ")
            ),
        );
    }
}

fn check_agents(outline: &Outline, errors: &mut Collector) {
    for step in &outline.steps {
        let Some((agent, at)) = &step.agent else { continue };
        if outline.agents.contains(agent) {
            continue;
        }
        let message = if outline.agents.is_empty() {
            format!(
                "{} uses agent `{agent}`, but the workflow defines no agents: add it under `agents:`",
                step_label(step)
            )
        } else {
            format!(
                "{} uses agent `{agent}`, which is not defined under `agents:`{}",
                step_label(step),
                did_you_mean(agent, outline.agents.iter().map(String::as_str))
            )
        };
        errors.at(*at, message);
    }
}

fn check_templates(
    outline: &Outline,
    index: &BTreeMap<&str, usize>,
    edges: &[Vec<(usize, Location)>],
    source: &str,
    errors: &mut Collector,
) {
    for (i, step) in outline.steps.iter().enumerate() {
        let own = step.name.as_ref().map(|n| n.0.as_str());
        let mut upstream: Option<BTreeSet<usize>> = None;
        for site in &step.templates {
            let template = match template::parse(&site.text) {
                Ok(template) => template,
                Err(error) => {
                    errors.at(
                        locate(site, error.offset, source),
                        format!("{}, `{}`: {}", step_label(step), site.field, error.message),
                    );
                    continue;
                }
            };
            let mut offset = 0;
            for part in &template.parts {
                let (reference, expression) = match part {
                    Part::Text(text) => {
                        offset += text.len();
                        continue;
                    }
                    Part::Expr { reference, source } => (reference, source),
                };
                let at = locate(site, offset, source);
                offset += expression.len();
                let context = format!("{}, `{}`: `{expression}`", step_label(step), site.field);
                let step_name = match reference {
                    Reference::Var(var) => {
                        if !outline.vars.contains(var) {
                            let hint = did_you_mean(var, outline.vars.iter().map(String::as_str));
                            errors.at(
                                at,
                                format!("{context}: there is no var `{var}`{hint}; declare it under `vars:`"),
                            );
                        }
                        continue;
                    }
                    Reference::StepOutput { step, .. } | Reference::StepExitCode { step } => step,
                };
                let what = match reference {
                    Reference::StepExitCode { .. } => "exit code",
                    _ => "output",
                };
                if Some(step_name.as_str()) == own {
                    errors.at(at, format!("{context}: a step cannot use its own {what}"));
                    continue;
                }
                let Some(&j) = index.get(step_name.as_str()) else {
                    let hint = did_you_mean(step_name, index.keys().copied().filter(|n| Some(*n) != own));
                    errors.at(at, format!("{context}: there is no step `{step_name}`{hint}"));
                    continue;
                };
                let upstream = upstream.get_or_insert_with(|| reachable(i, edges));
                if !upstream.contains(&j) {
                    errors.at(
                        at,
                        format!(
                            "{context}: `{step_name}` is not upstream of {}, so its {what} may not exist yet: \
                             add `{step_name}` to `needs`",
                            step_label(step)
                        ),
                    );
                }
            }
        }
    }
}

/// Every step that `start` needs, directly or through others.
fn reachable(start: usize, edges: &[Vec<(usize, Location)>]) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<usize> = edges[start].iter().map(|e| e.0).collect();
    while let Some(i) = stack.pop() {
        if seen.insert(i) {
            stack.extend(edges[i].iter().map(|e| e.0));
        }
    }
    seen
}

/// Where byte `offset` of a template value is in the file. The value's text is found again in
/// the source (escapes, quotes and block indentation make the two differ) by looking there for
/// the rest of its line; when that fails, the start of the value.
fn locate(site: &TemplateSite, offset: usize, source: &str) -> Location {
    let Some(start) = site.byte_offset.filter(|&s| source.is_char_boundary(s)) else { return site.location };
    let mut offset = offset.min(site.text.len());
    while !site.text.is_char_boundary(offset) {
        offset -= 1;
    }
    let rest = &site.text[offset..];
    let mut needle_end = rest.find('\n').unwrap_or(rest.len()).min(40);
    while !rest.is_char_boundary(needle_end) {
        needle_end -= 1;
    }
    let needle = &rest[..needle_end];
    if needle.is_empty() {
        return site.location;
    }
    // The same text may appear earlier in the value: take the occurrence of the same rank.
    let rank = occurrences(&site.text, needle).take_while(|&p| p < offset).count();
    match occurrences(&source[start..], needle).nth(rank) {
        Some(found) => position(source, start + found),
        None => site.location,
    }
}

/// Byte offsets where `needle` starts in `haystack`, overlapping ones included.
fn occurrences<'a>(haystack: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    haystack.char_indices().map(|(i, _)| i).filter(move |&i| haystack[i..].starts_with(needle))
}

/// The 1-based line and column (in characters) of a byte offset.
fn position(source: &str, byte: usize) -> Location {
    let before = &source[..byte];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Location { line: before.matches('\n').count() + 1, column: before[line_start..].chars().count() + 1 }
}

/// A step a commit requires must be judged by something: `allow_failure` without `verify`
/// checks would count any result as green.
pub(super) fn check_commit_requirements(workflow: &Workflow, errors: &mut Collector) {
    for step in &workflow.steps {
        let Action::Commit(commit) = &step.action else { continue };
        for required in &commit.requires {
            let Some(target) = workflow.step(required) else { continue };
            if target.allow_failure && target.verify.is_empty() {
                errors.at(
                    target.location,
                    format!(
                        "step `{required}` has `allow_failure: true` and no `verify:` checks, so any result \
                         counts as a success, yet commit step `{}` requires it to be green: add checks \
                         (`exit_code: 0`, a gate) or drop `allow_failure`",
                        step.name
                    ),
                );
            } else if matches!(target.action, Action::Commit(_)) {
                errors.at(
                    step.location,
                    format!(
                        "step `{}` requires commit step `{required}`: require the gates instead",
                        step.name
                    ),
                );
            }
        }
    }
}

/// Checks that every `builtin:NAME` gate (steps and `verify` checks) is one of `known`. The spec
/// layer does not know which built-ins exist; whoever does (the engine, `greenlight validate`)
/// passes their names.
pub fn check_builtin_gates(workflow: &Workflow, file: &str, known: &[&str]) -> Result<(), SpecErrors> {
    let mut errors = Collector::new(file);
    for step in &workflow.steps {
        let checks = step.verify.iter().filter_map(|check| match check {
            Check::Gate(gate) => Some(gate),
            _ => None,
        });
        let step_gate = match &step.action {
            Action::Gate(gate) => Some(gate),
            _ => None,
        };
        for gate in step_gate.into_iter().chain(checks) {
            let Some(name) = gate.builtin_name() else { continue };
            if !known.contains(&name) {
                errors.at(
                    gate.location,
                    format!(
                        "step `{}`: there is no built-in gate `{name}`{}; the built-ins are {} (see `greenlight gate list`)",
                        step.name,
                        did_you_mean(name, known.iter().copied()),
                        known.join(", ")
                    ),
                );
            }
        }
    }
    errors.finish(())
}
