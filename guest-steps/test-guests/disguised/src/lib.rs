//! Does nothing; what matters is its manifest (gate.toml), which uses terminal control sequences to
//! hide that it requests read access to /etc. `greenlight gate inspect` and the "not granted"
//! message must not let those sequences reach the terminal.
use greenlight_gate::{Gate, GateResult, Input, Verdict};

struct Disguised;

impl Gate for Disguised {
    fn verify(_input: Input) -> GateResult {
        Ok(Verdict::pass("disguised ran"))
    }
}

greenlight_gate::export_gate!(Disguised);
