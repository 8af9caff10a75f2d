//! Requests capabilities that nobody grants by default (exec of curl, a writable directory, read
//! access outside the workspace). Its verify does nothing: the test is whether the host refuses to
//! instantiate it until every requested capability is granted.
use greenlight_gate::{Gate, GateResult, Input, Verdict};

struct Greedy;

impl Gate for Greedy {
    fn verify(_input: Input) -> GateResult {
        Ok(Verdict::pass("greedy ran: every requested capability was granted"))
    }
}

greenlight_gate::export_gate!(Greedy);
