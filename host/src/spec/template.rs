//! `{{ ... }}` expressions in workflow text: parsing only (rendering with values is
//! `engine::render`, which also knows how to escape a value for the shell).
//!
//! An expression is one of:
//! - `{{ vars.NAME }}`: a workflow variable;
//! - `{{ steps.NAME.output }}`: what an upstream step printed;
//! - `{{ steps.NAME.output.FIELD.0... }}`: a field of that output read as JSON (a numeric segment
//!   also indexes an array);
//! - `{{ steps.NAME.exit_code }}`: how that step exited.
//!
//! Spaces inside the braces are optional. Names and fields are made of ASCII letters, digits, `-`
//! and `_`. Anything else between `{{` and `}}` is an error, and so is a `{{` that is never closed;
//! text outside expressions (a lone `{`, `}}`) is kept as it is. There is no escape for a literal
//! `{{`: write `{ {` or build it in the shell (`printf '{%s' '{'`) instead.
//!
//! The parts of a [`Template`] put back together (`Text` as is, `Expr` by its `source`) are exactly
//! the text that was parsed, so a part's byte offset can always be recovered.

use std::fmt;

/// Parsed text: literal text and expressions, in order. Adjacent text is one part; empty text is
/// no part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// `source` is the expression as written, braces included (`{{ steps.a.output }}`).
    Expr {
        reference: Reference,
        source: String,
    },
}

/// What an expression refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// `vars.NAME`
    Var(String),
    /// `steps.NAME.output`, with `path` the JSON fields after `output` (empty for the whole output).
    StepOutput { step: String, path: Vec<String> },
    /// `steps.NAME.exit_code`
    StepExitCode { step: String },
}

/// Why a text is not a valid template; `offset` is the byte offset of the problem in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub offset: usize,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

impl Template {
    /// Every expression's reference, in order of appearance (repeats included).
    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.parts.iter().filter_map(|part| match part {
            Part::Expr { reference, .. } => Some(reference),
            Part::Text(_) => None,
        })
    }

    /// True when the text has no expressions.
    pub fn is_literal(&self) -> bool {
        self.references().next().is_none()
    }
}

impl Reference {
    /// The step this reference reads from, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Reference::Var(_) => None,
            Reference::StepOutput { step, .. } | Reference::StepExitCode { step } => Some(step),
        }
    }
}

/// The expression as it would be written inside braces: `steps.a.output.items.0`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Var(name) => write!(f, "vars.{name}"),
            Reference::StepOutput { step, path } => {
                write!(f, "steps.{step}.output")?;
                path.iter().try_for_each(|field| write!(f, ".{field}"))
            }
            Reference::StepExitCode { step } => write!(f, "steps.{step}.exit_code"),
        }
    }
}

const OPEN: &str = "{{";
const CLOSE: &str = "}}";

/// What an expression may be, for error messages.
const FORMS: &str = "an expression is `vars.NAME`, `steps.NAME.output`, `steps.NAME.output.FIELD` \
                     or `steps.NAME.exit_code`";

/// Parses `text` into literal parts and `{{ ... }}` expressions.
pub fn parse(text: &str) -> Result<Template, TemplateError> {
    let mut parts = Vec::new();
    let mut rest_start = 0;
    while let Some(found) = text[rest_start..].find(OPEN) {
        let open = rest_start + found;
        let inner_start = open + OPEN.len();
        let Some(len) = text[inner_start..].find(CLOSE) else {
            return Err(TemplateError {
                message: "`{{` is never closed: end the expression with `}}`".to_string(),
                offset: open,
            });
        };
        let close = inner_start + len;
        let end = close + CLOSE.len();
        if open > rest_start {
            parts.push(Part::Text(text[rest_start..open].to_string()));
        }
        let source = &text[open..end];
        let reference = parse_expression(&text[inner_start..close], inner_start, source)?;
        parts.push(Part::Expr { reference, source: source.to_string() });
        rest_start = end;
    }
    if rest_start < text.len() {
        parts.push(Part::Text(text[rest_start..].to_string()));
    }
    Ok(Template { parts })
}

/// A dot-separated name with its byte offset in the whole text.
struct Segment<'a> {
    name: &'a str,
    offset: usize,
}

/// `inner` is the text between the braces, starting at byte `base` of the whole text.
fn parse_expression(inner: &str, base: usize, source: &str) -> Result<Reference, TemplateError> {
    let error = |message: String, offset: usize| Err(TemplateError { message, offset });
    let lead = inner.len() - inner.trim_start().len();
    let body = inner.trim();
    let base = base + lead;
    if body.is_empty() {
        return error(format!("`{source}` is empty: {FORMS}"), base - OPEN.len() - lead);
    }
    if let Some((i, c)) = body.char_indices().find(|&(_, c)| !is_name_char(c) && c != '.') {
        return error(bad_char_message(c, source), base + i);
    }
    let mut segments = Vec::new();
    let mut offset = base;
    for name in body.split('.') {
        if name.is_empty() {
            return error(format!("`{source}` has an empty name between dots: {FORMS}"), offset);
        }
        segments.push(Segment { name, offset });
        offset += name.len() + 1;
    }

    let root = &segments[0];
    match root.name {
        "vars" => match segments.as_slice() {
            [_] => {
                error(format!("`{source}`: `vars` needs a name, as in `{{{{ vars.NAME }}}}`"), root.offset)
            }
            [_, name] => Ok(Reference::Var(name.name.to_string())),
            [_, name, field, ..] => error(
                format!(
                    "`{source}`: a var is plain text and has no fields; write `{{{{ vars.{} }}}}`",
                    name.name
                ),
                field.offset,
            ),
            [] => unreachable!("split yields at least one segment"),
        },
        "steps" => {
            let Some(step) = segments.get(1) else {
                return error(
                    format!("`{source}`: `steps` needs a step name, as in `{{{{ steps.NAME.output }}}}`"),
                    root.offset,
                );
            };
            let step_name = step.name.to_string();
            let Some(field) = segments.get(2) else {
                return error(
                    format!(
                        "`{source}`: say what to read from step `{0}`: `steps.{0}.output` or \
                         `steps.{0}.exit_code`",
                        step.name
                    ),
                    step.offset,
                );
            };
            match field.name {
                "output" => Ok(Reference::StepOutput {
                    step: step_name,
                    path: segments[3..].iter().map(|s| s.name.to_string()).collect(),
                }),
                "exit_code" => match segments.get(3) {
                    None => Ok(Reference::StepExitCode { step: step_name }),
                    Some(extra) => {
                        error(format!("`{source}`: `exit_code` is a number and has no fields"), extra.offset)
                    }
                },
                other => {
                    let hint = match other {
                        "outputs" | "stdout" | "out" | "result" => " (did you mean `output`?)",
                        "exitcode" | "exit-code" | "exitCode" | "code" | "status" => {
                            " (did you mean `exit_code`?)"
                        }
                        _ => "",
                    };
                    error(
                        format!(
                            "`{source}`: a step has `output` and `exit_code`, not `{other}`{hint}; \
                             write `steps.{0}.output` or `steps.{0}.exit_code`",
                            step.name
                        ),
                        field.offset,
                    )
                }
            }
        }
        other => {
            let hint = match (other, segments.len()) {
                ("var" | "variables" | "inputs" | "input", _) => " (did you mean `vars`?)".to_string(),
                ("step", _) => " (did you mean `steps`?)".to_string(),
                ("env", _) => {
                    " (environment variables are not templates: a command reads them itself, as in \"$HOME\")"
                        .to_string()
                }
                (name, 1) => format!(" (did you mean `{{{{ vars.{name} }}}}`?)"),
                _ => String::new(),
            };
            error(format!("`{source}`: unknown root `{other}`{hint}; {FORMS}"), root.offset)
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn bad_char_message(c: char, source: &str) -> String {
    let why = match c {
        '|' => "templates have no filters".to_string(),
        '[' | ']' => "index arrays with a dot, as in `steps.NAME.output.items.0`".to_string(),
        '(' | ')' => "templates have no function calls".to_string(),
        '{' | '}' => "expressions do not nest".to_string(),
        '\'' | '"' => "names are not quoted".to_string(),
        c if c.is_whitespace() => "spaces may only surround the expression, not split it".to_string(),
        _ => "names and fields are made of letters, digits, `-` and `_`".to_string(),
    };
    format!("`{source}`: unexpected {}: {why}; {FORMS}", describe(c))
}

fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() { format!("{:?}", c) } else { format!("`{c}`") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<Reference> {
        parse(text).unwrap().references().cloned().collect()
    }
    fn var(name: &str) -> Reference {
        Reference::Var(name.into())
    }
    fn output(step: &str, path: &[&str]) -> Reference {
        Reference::StepOutput { step: step.into(), path: path.iter().map(|s| s.to_string()).collect() }
    }
    fn err(text: &str) -> TemplateError {
        parse(text).expect_err(text)
    }

    #[test]
    fn text_and_expressions_alternate_and_reassemble_to_the_input() {
        let text = "echo \"got {{ steps.a.output }}\" and {{vars.feature}}{{ steps.b-2.exit_code }}!";
        let t = parse(text).unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Text("echo \"got ".into()),
                Part::Expr { reference: output("a", &[]), source: "{{ steps.a.output }}".into() },
                Part::Text("\" and ".into()),
                Part::Expr { reference: var("feature"), source: "{{vars.feature}}".into() },
                Part::Expr {
                    reference: Reference::StepExitCode { step: "b-2".into() },
                    source: "{{ steps.b-2.exit_code }}".into()
                },
                Part::Text("!".into()),
            ]
        );
        let rebuilt: String = t
            .parts
            .iter()
            .map(|p| match p {
                Part::Text(s) => s.as_str(),
                Part::Expr { source, .. } => source.as_str(),
            })
            .collect();
        assert_eq!(rebuilt, text);
    }

    #[test]
    fn plain_text_is_one_part_and_empty_text_none() {
        assert_eq!(parse("cargo test").unwrap().parts, vec![Part::Text("cargo test".into())]);
        assert!(parse("cargo test").unwrap().is_literal());
        assert_eq!(parse("").unwrap().parts, vec![]);
        assert_eq!(parse("a { b } }} c").unwrap().parts, vec![Part::Text("a { b } }} c".into())]);
    }

    #[test]
    fn whitespace_inside_the_braces_is_optional() {
        for text in ["{{vars.x}}", "{{ vars.x }}", "{{\tvars.x\n}}", "{{   vars.x}}"] {
            assert_eq!(refs(text), vec![var("x")], "{text}");
        }
    }

    #[test]
    fn json_fields_and_indexes_follow_output() {
        assert_eq!(refs("{{ steps.plan.output.a.b }}"), vec![output("plan", &["a", "b"])]);
        assert_eq!(
            refs("{{ steps.plan.output.items.0.name }}"),
            vec![output("plan", &["items", "0", "name"])]
        );
        assert_eq!(refs("{{ steps.my_step-1.output }}"), vec![output("my_step-1", &[])]);
    }

    #[test]
    fn references_display_as_written() {
        for text in ["vars.x", "steps.a.output", "steps.a.output.items.0", "steps.a-b.exit_code"] {
            assert_eq!(refs(&format!("{{{{ {text} }}}}"))[0].to_string(), text);
        }
        assert_eq!(refs("{{ steps.a.exit_code }}")[0].step(), Some("a"));
        assert_eq!(refs("{{ vars.a }}")[0].step(), None);
    }

    #[test]
    fn an_unclosed_expression_points_at_its_opening() {
        let e = err("echo ok\necho {{ steps.a.output");
        assert_eq!(e.offset, 13);
        assert!(e.message.contains("never closed"), "{}", e.message);
    }

    #[test]
    fn unknown_roots_say_which_roots_exist() {
        let e = err("echo {{ env.HOME }}");
        assert_eq!(e.offset, 8);
        assert!(e.message.contains("unknown root `env`"), "{}", e.message);
        assert!(
            e.message.contains("`vars.NAME`") && e.message.contains("`steps.NAME.output`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("$HOME"), "{}", e.message);
        assert!(err("{{ feature }}").message.contains("did you mean `{{ vars.feature }}`?"));
        assert!(err("{{ step.a.output }}").message.contains("did you mean `steps`?"));
    }

    #[test]
    fn malformed_expressions_are_errors_that_point_at_the_problem() {
        let cases: &[(&str, usize, &str)] = &[
            ("{{ }}", 0, "empty"),
            ("x {{}}", 2, "empty"),
            ("{{ vars }}", 3, "needs a name"),
            ("{{ vars.a.b }}", 10, "no fields"),
            ("{{ steps }}", 3, "needs a step name"),
            ("{{ steps.a }}", 9, "`steps.a.output` or `steps.a.exit_code`"),
            ("{{ steps.a.stdout }}", 11, "did you mean `output`?"),
            ("{{ steps.a.exit_code.x }}", 21, "no fields"),
            ("{{ steps.a.output | upper }}", 17, "unexpected ' '"),
            ("{{ steps.a.output|upper }}", 17, "no filters"),
            ("{{ steps.a.output.items[0] }}", 23, "index arrays with a dot"),
            ("{{ steps..output }}", 9, "empty name"),
            ("{{ steps.a.output. }}", 18, "empty name"),
            ("{{ vars.é }}", 8, "letters, digits"),
            ("{{ {{ vars.a }} }}", 3, "do not nest"),
            ("{{ \"vars.a\" }}", 3, "not quoted"),
        ];
        for (text, offset, needle) in cases {
            let e = err(text);
            assert!(e.message.contains(needle), "{text}: {}", e.message);
            assert_eq!(e.offset, *offset, "{text}: {}", e.message);
        }
    }
}
