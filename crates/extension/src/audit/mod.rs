//! The audit trail (usage log, activity log, NOTIFY) and per-key statistics.

pub mod redaction;
pub mod stats;
pub mod usage_log;
