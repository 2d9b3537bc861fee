//! What the server remembers of each key it serves, by the key's SHA-256 (never the
//! key): its requests in flight (at most `per_key`, so one key cannot take the
//! whole pool), the end of a rate-limit window the database said is full (until
//! then its calls are refused from memory, with no round trip), and the tools the
//! database just refused it (a request naming one in `Mcp-Name` is refused before
//! its body is read). A key leaves the map when nothing of it is left to remember.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a refused tool is remembered: a grant takes effect within this time.
const DENIAL_MEMORY: Duration = Duration::from_secs(5);
/// Refused tool names remembered per key (the names come from the client).
const MAX_DENIALS: usize = 32;

#[derive(Default)]
struct Entry {
    in_flight: usize,
    full_until: Option<Instant>,
    denied: HashSet<String>,
    denied_at: Option<Instant>,
}

impl Entry {
    fn forgettable(&self, now: Instant) -> bool {
        self.in_flight == 0
            && self.full_until.is_none_or(|t| t <= now)
            && self.denied_at.is_none_or(|t| now - t >= DENIAL_MEMORY)
    }
}

pub struct Keys {
    per_key: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

/// One request of one key in flight; counted down when dropped.
pub struct Flight<'a> {
    keys: &'a Keys,
    digest: String,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.keys.with(&self.digest, |e| e.in_flight -= 1);
    }
}

/// Why a key's request is refused from memory.
#[derive(Debug, PartialEq)]
pub enum Busy {
    /// `per_key` requests in flight already.
    InFlight,
    /// The rate-limit window is full for this long yet.
    Window(Duration),
}

impl Keys {
    pub fn new(per_key: usize) -> Self {
        Self {
            per_key,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_key(&self) -> usize {
        self.per_key
    }

    fn with<T>(&self, digest: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("keys lock");
        let entry = entries.entry(digest.to_string()).or_default();
        let out = f(entry);
        if entry.forgettable(now) {
            entries.remove(digest);
        }
        out
    }

    /// Admits a request of the key; `charged` when it is a call the window counts.
    pub fn enter(&self, digest: &str, charged: bool) -> Result<Flight<'_>, Busy> {
        let now = Instant::now();
        self.with(digest, |e| {
            if let Some(until) = e.full_until.filter(|t| *t > now && charged) {
                return Err(Busy::Window(until - now));
            }
            if e.in_flight >= self.per_key {
                return Err(Busy::InFlight);
            }
            e.in_flight += 1;
            Ok(())
        })?;
        Ok(Flight {
            keys: self,
            digest: digest.to_string(),
        })
    }

    /// The database refused a call of the key: its window is full for `wait`.
    pub fn window_full(&self, digest: &str, wait: Duration) {
        self.with(digest, |e| e.full_until = Some(Instant::now() + wait));
    }

    /// The database refused the key this tool.
    pub fn denied(&self, digest: &str, tool: &str) {
        self.with(digest, |e| {
            let now = Instant::now();
            if e.denied_at.is_none_or(|t| now - t >= DENIAL_MEMORY) {
                e.denied.clear();
            }
            if e.denied.len() < MAX_DENIALS {
                e.denied.insert(tool.to_string());
                e.denied_at = Some(now);
            }
        });
    }

    /// Whether the database refused the key this tool a moment ago.
    pub fn is_denied(&self, digest: &str, tool: &str) -> bool {
        let now = Instant::now();
        self.with(digest, |e| {
            e.denied_at.is_some_and(|t| now - t < DENIAL_MEMORY) && e.denied.contains(tool)
        })
    }

    /// Keys remembered (for the tests: nothing stays once nothing is left).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_at_most_its_share_and_is_forgotten_after() {
        let keys = Keys::new(2);
        let a = keys.enter("k", true).unwrap();
        let _b = keys.enter("k", true).unwrap();
        assert_eq!(keys.enter("k", true).err(), Some(Busy::InFlight));
        assert!(keys.enter("other", true).is_ok());
        drop(a);
        let c = keys.enter("k", true).unwrap();
        drop((c, _b));
        assert_eq!(keys.len(), 0);
    }

    #[test]
    fn a_full_window_refuses_calls_until_it_frees() {
        let keys = Keys::new(4);
        keys.window_full("k", Duration::from_millis(200));
        assert!(
            matches!(keys.enter("k", true), Err(Busy::Window(w)) if w <= Duration::from_millis(200))
        );
        assert!(keys.enter("k", false).is_ok(), "tools/list is not charged");
        std::thread::sleep(Duration::from_millis(210));
        assert!(keys.enter("k", true).is_ok());
        assert_eq!(keys.len(), 0);
    }

    #[test]
    fn denied_tools_are_remembered_briefly_and_boundedly() {
        let keys = Keys::new(1);
        keys.denied("k", "create_job");
        assert!(keys.is_denied("k", "create_job"));
        assert!(!keys.is_denied("k", "fetch_jobs"));
        assert!(!keys.is_denied("j", "create_job"));
        for i in 0..100 {
            keys.denied("k", &format!("t{i}"));
        }
        assert_eq!(keys.entries.lock().unwrap()["k"].denied.len(), MAX_DENIALS);
    }
}
