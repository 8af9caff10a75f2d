//! The `greenlight` command line: argument parsing, exit codes and printing. The work is done by
//! the layers below.

mod gate;
mod text;
mod workflow;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes shared by every command, so scripts can tell the outcomes apart.
pub mod exit {
    /// Green: the gate passed.
    pub const PASS: u8 = 0;
    /// Red: the gate ran and found a problem.
    pub const FAIL: u8 = 1;
    /// The command line or its input was wrong (nothing was run, or it could not start).
    pub const USAGE: u8 = 2;
    /// The gate could not decide: it crashed, hit a limit, or reported an error.
    pub const GATE_ERROR: u8 = 3;
}

#[derive(Parser)]
#[command(
    name = "greenlight",
    version,
    about = "Agent coding workflows that only finish green",
    long_about = "greenlight runs agent coding workflows that may only finish green: gates verify \
                  every step, red results go to repair, and nothing is committed unless every \
                  required gate passed.\n\n\
                  Gates are WebAssembly components run in a sandbox that grants them nothing by \
                  default: they see the workspace read-only (if they ask to), run only the programs \
                  they declared and you granted, and have no network and no environment.",
    after_help = "Start with:\n  greenlight gate list\n  greenlight gate run builtin:changed-files --param 'paths=[src/]'"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run, inspect and list gates.
    #[command(subcommand)]
    Gate(gate::GateCommand),
    /// Check a workflow file: its syntax, keys, steps, needs, agents and templates.
    ///
    /// Exit codes: 0 valid, 2 invalid (every error is printed as FILE:LINE:COLUMN: MESSAGE).
    Validate(workflow::ValidateArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gate(command) => gate::run(command),
        Command::Validate(args) => workflow::validate(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            // Errors quote manifests and paths, which come from components: escape them too.
            eprintln!("error: {}", text::block(&format!("{error:#}")));
            ExitCode::from(exit::USAGE)
        }
    }
}

/// Run a future to completion on a multi-threaded runtime, then leave without waiting for
/// blocking threads: a guest can wedge one (opening a FIFO, say) after its call has ended.
fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let output = runtime.block_on(future);
    runtime.shutdown_background();
    Ok(output)
}
