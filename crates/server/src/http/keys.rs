//! What the server remembers of each key it serves, by the key's SHA-256 (never the
//! key): its requests in flight (at most `per_key`, so one key cannot take the
//! whole pool), the end of a rate-limit window the database said is full (until
//! then its calls are refused from memory, with no round trip), the tools the
//! database just refused it (a request naming one in `Mcp-Name` is refused before
//! its body is read), and whether the database has accepted it lately. Anyone can
//! make a well-formed key (the checksum is no secret), so keys the database has not
//! accepted are strangers: together they get all but one of the pool's connections
//! (a stranger waits a moment for a place), so a flood of forged keys always leaves
//! a connection to the keys the database knows; and strangers cancel nothing. A key leaves the map when nothing of it is left to
//! remember.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a refused tool is remembered: a grant takes effect within this time.
const DENIAL_MEMORY: Duration = Duration::from_secs(5);
/// Refused tool names remembered per key (the names come from the client).
const MAX_DENIALS: usize = 32;
/// How long a key the database accepted is known (then it is a stranger again
/// until its next accepted request).
const KNOWN_FOR: Duration = Duration::from_secs(600);

#[derive(Default)]
struct Entry {
    in_flight: usize,
    full_until: Option<Instant>,
    denied: HashSet<String>,
    denied_at: Option<Instant>,
    accepted_at: Option<Instant>,
}

impl Entry {
    fn forgettable(&self, now: Instant) -> bool {
        self.in_flight == 0
            && self.full_until.is_none_or(|t| t <= now)
            && self.denied_at.is_none_or(|t| now - t >= DENIAL_MEMORY)
            && !self.known(now)
    }

    fn known(&self, now: Instant) -> bool {
        self.accepted_at.is_some_and(|t| now - t < KNOWN_FOR)
    }
}

pub struct Keys {
    per_key: usize,
    entries: Mutex<HashMap<String, Entry>>,
    /// Places for requests of keys the database has not accepted lately, together.
    strangers: std::sync::Arc<tokio::sync::Semaphore>,
}

/// One request of one key in flight; counted down when dropped.
pub struct Flight<'a> {
    keys: &'a Keys,
    digest: String,
    /// A stranger's place, once it has one.
    place: Option<tokio::sync::OwnedSemaphorePermit>,
    stranger: bool,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.keys.with(&self.digest, |e| e.in_flight -= 1);
    }
}

/// How long a stranger's request waits for a place before it is refused.
const STRANGER_WAIT: Duration = Duration::from_secs(5);

impl Flight<'_> {
    /// A stranger's request waits for one of the strangers' places (a known key's
    /// goes on at once); refused when none frees in time.
    pub async fn placed(mut self) -> Result<Self, Busy> {
        if self.stranger {
            let place = self.keys.strangers.clone().acquire_owned();
            match tokio::time::timeout(STRANGER_WAIT, place).await {
                Ok(Ok(place)) => self.place = Some(place),
                _ => return Err(Busy::Strangers),
            }
        }
        Ok(self)
    }
}

/// Why a key's request is refused from memory.
#[derive(Debug, PartialEq)]
pub enum Busy {
    /// `per_key` requests in flight already.
    InFlight,
    /// Keys the database has not accepted lately have their one share in flight.
    Strangers,
    /// The rate-limit window is full for this long yet.
    Window(Duration),
}

impl Keys {
    pub fn new(per_key: usize, pool_size: usize) -> Self {
        Self {
            per_key,
            entries: Mutex::new(HashMap::new()),
            strangers: std::sync::Arc::new(tokio::sync::Semaphore::new(
                pool_size.saturating_sub(1).max(1),
            )),
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
    /// (A stranger's request must then wait for its place: `Flight::placed`.)
    pub fn enter(&self, digest: &str, charged: bool) -> Result<Flight<'_>, Busy> {
        let now = Instant::now();
        let stranger = self.with(digest, |e| {
            if let Some(until) = e.full_until.filter(|t| *t > now && charged) {
                return Err(Busy::Window(until - now));
            }
            if e.in_flight >= self.per_key {
                return Err(Busy::InFlight);
            }
            e.in_flight += 1;
            Ok(!e.known(now))
        })?;
        Ok(Flight {
            keys: self,
            digest: digest.to_string(),
            place: None,
            stranger,
        })
    }

    /// The database accepted the key.
    pub fn accepted(&self, digest: &str) {
        self.with(digest, |e| e.accepted_at = Some(Instant::now()));
    }

    /// Whether the database accepted the key lately.
    pub fn is_known(&self, digest: &str) -> bool {
        let now = Instant::now();
        self.with(digest, |e| e.known(now))
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

    async fn placed<'a>(keys: &'a Keys, digest: &str) -> Result<Flight<'a>, Busy> {
        keys.enter(digest, true).unwrap().placed().await
    }

    #[tokio::test(start_paused = true)]
    async fn strangers_share_one_keys_share_and_a_known_key_has_its_own() {
        let keys = Keys::new(2, 3);
        let a = placed(&keys, "forged 1").await.unwrap();
        let _b = placed(&keys, "forged 2").await.unwrap();
        let third = placed(&keys, "forged 3").await;
        assert_eq!(third.err(), Some(Busy::Strangers), "after waiting its 5 s");
        keys.accepted("k");
        assert!(keys.is_known("k") && !keys.is_known("forged 3"));
        let _k = placed(&keys, "k").await.unwrap();
        drop(a);
        assert!(placed(&keys, "forged 3").await.is_ok());
    }

    #[test]
    fn a_key_gets_at_most_its_share_and_is_forgotten_after() {
        let keys = Keys::new(2, 4);
        keys.accepted("k");
        keys.accepted("other");
        let a = keys.enter("k", true).unwrap();
        let _b = keys.enter("k", true).unwrap();
        assert_eq!(keys.enter("k", true).err(), Some(Busy::InFlight));
        assert!(keys.enter("other", true).is_ok());
        drop(a);
        let c = keys.enter("k", true).unwrap();
        drop((c, _b));
        assert_eq!(keys.len(), 2, "accepted keys are remembered a while");
    }

    #[test]
    fn a_full_window_refuses_calls_until_it_frees() {
        let keys = Keys::new(4, 8);
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
        let keys = Keys::new(1, 2);
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
