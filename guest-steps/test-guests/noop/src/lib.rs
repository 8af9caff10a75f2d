//! Passes without doing anything: the host's per-call overhead, and nothing else.
use greenlight_gate::{Gate, GateResult, Input, Verdict};

struct Noop;

impl Gate for Noop {
    fn verify(_input: Input) -> GateResult {
        Ok(Verdict::pass("nothing to check"))
    }
}

greenlight_gate::export_gate!(Noop);
