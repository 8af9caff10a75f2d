//! Native processes under the host's control: process groups, deadlines, bounded output.

pub mod confine;
pub mod logged;
pub mod process;
