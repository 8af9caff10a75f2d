//! `greenlight:gate/log`: messages for the person running the gate, bounded per call.

use serde::Serialize;

use crate::sandbox::bindings::log::{Host, Level};

#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub level: &'static str,
    pub message: String,
}

pub struct LogCapability {
    pub entries: Vec<LogEntry>,
    /// Messages that did not fit in the budget: counted, not kept.
    pub dropped: u64,
    budget: usize,
}

/// One message is cut to this many bytes.
const MAX_MESSAGE: usize = 4096;
/// What each kept message costs beyond its text.
const MESSAGE_OVERHEAD: usize = 64;

impl LogCapability {
    pub fn new(budget: usize) -> Self {
        LogCapability { entries: Vec::new(), dropped: 0, budget }
    }
}

impl Host for LogCapability {
    async fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let cut = (0..=MAX_MESSAGE).rev().find(|&i| message.is_char_boundary(i)).unwrap_or(0);
            message.truncate(cut);
            message.push_str(" [cut]");
        }
        // Every message costs its overhead too, so a flood of empty messages is bounded as well.
        let cost = message.len() + MESSAGE_OVERHEAD;
        if cost > self.budget {
            self.dropped += 1;
            return;
        }
        self.budget -= cost;
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.entries.push(LogEntry { level, message });
    }
}
