//! What the handler tells the HTTP gate about the request it answered, through the
//! request's extensions: the gate turns it into a status, a metric and what it
//! remembers of the key, without reading the answer's body again. Over stdio
//! there is no report.

use crate::metrics::Outcome;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Report {
    /// How a `tools/call` ended, and how long it took in the server.
    pub call: Option<(Outcome, Duration)>,
    /// The database refused the key, and it was the bearer's: HTTP 401.
    pub bearer_refused: bool,
    /// The key's rate-limit window is full for this long.
    pub retry_after: Option<Duration>,
    /// The database refused the key the tool it called.
    pub denied: bool,
    /// The database accepted the key the request used.
    pub accepted: bool,
}

/// One request's report, shared by the gate (which made it) and the handler.
#[derive(Clone, Default)]
pub struct Slot(Arc<Mutex<Report>>);

impl Slot {
    pub fn update(&self, f: impl FnOnce(&mut Report)) {
        f(&mut self.0.lock().expect("report lock"));
    }

    pub fn take(&self) -> Report {
        std::mem::take(&mut self.0.lock().expect("report lock"))
    }
}
