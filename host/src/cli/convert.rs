//! `greenlight convert`: print the native greenlight form of an agent-relay workflow
//! (`relay.yaml`), headed by comments on what runs differently from relay, or of the workflow a
//! workflow component (`.wasm`) plans.

use std::path::PathBuf;

use clap::Args;

use super::exit;
use super::workflow::{check_text, is_component, print_errors, read_definition};
use crate::engine;
use crate::report::text;
use crate::spec::{SpecError, SpecErrors, emit, relay};

#[derive(Args)]
pub struct ConvertArgs {
    /// The agent-relay workflow file (relay.yaml), or a workflow component (.wasm).
    file: PathBuf,
    /// Which of the file's `workflows:` to convert (default: the first).
    #[arg(long)]
    workflow: Option<String>,
    /// For a workflow component: params to plan with (repeatable), as `greenlight run --var`.
    #[arg(long = "var", value_name = "K=V")]
    vars: Vec<String>,
}

/// Print the native YAML on stdout and exit 0, or print every error (`FILE:LINE:COLUMN: MESSAGE`)
/// on stderr and exit 2.
pub fn convert(args: ConvertArgs) -> anyhow::Result<u8> {
    let file = args.file.display().to_string();
    let whole_file = |message: String| SpecErrors {
        errors: vec![SpecError { file: file.clone(), location: None, message }],
    };
    if is_component(&args.file) {
        let workspace = std::env::current_dir()?;
        let planned = read_definition(&args.file, &workspace, &args.vars)
            .and_then(|d| check_text(&d.text, &file, None).map(|_| d.text));
        return Ok(match planned {
            Ok(text) => {
                // The note goes last: line numbers in `greenlight run`'s errors point into this text.
                println!("{text}# planned by workflow component {} (greenlight convert)", text::line(&file));
                exit::PASS
            }
            Err(errors) => {
                print_errors(&errors);
                exit::USAGE
            }
        });
    }
    let text = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(error) => {
            print_errors(&whole_file(format!("cannot read the workflow file: {error}")));
            return Ok(exit::USAGE);
        }
    };
    if !relay::looks_like_relay(&text) {
        print_errors(&whole_file(
            "not an agent-relay workflow (its top level has neither `swarm:` nor `workflows:`); greenlight \
             reads its own format as it is: check it with `greenlight validate`"
                .to_owned(),
        ));
        return Ok(exit::USAGE);
    }
    let conversion = relay::parse_with_notes(&text, &file, args.workflow.as_deref())
        .and_then(|c| engine::preflight(&c.workflow, &file).map(|()| c));
    match conversion {
        Ok(conversion) => {
            print!("{}{}", header(&file, &conversion.notes), emit::to_yaml(&conversion.workflow));
            Ok(exit::PASS)
        }
        Err(errors) => {
            print_errors(&errors);
            Ok(exit::USAGE)
        }
    }
}

/// `# converted from FILE by greenlight convert`, then the notes, one comment line each (escaped:
/// a line break in a name must not end the comment).
fn header(file: &str, notes: &[String]) -> String {
    let mut out = format!("# converted from {} by greenlight convert\n", text::line(file));
    if !notes.is_empty() {
        out.push_str("# What runs differently from relay:\n");
        for note in notes {
            out.push_str(&format!("# - {}\n", text::line(note)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_the_file_and_keeps_each_note_on_its_line() {
        let header = header("relay.yaml", &["exit_code checks are enforced".into(), "a\nb".into()]);
        assert_eq!(
            header,
            "# converted from relay.yaml by greenlight convert\n# What runs differently from relay:\n\
             # - exit_code checks are enforced\n# - a\\nb\n"
        );
        assert_eq!(header.lines().filter(|l| !l.starts_with('#')).count(), 0);
    }
}
