//! The calls in flight that a `notifications/cancelled` may stop, over HTTP, where
//! each request is served alone and rmcp cannot match the notification to the call:
//! by the key's digest and the request's id, so a client can only cancel its own
//! key's calls. Each entry leaves when its call ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

type Name = (String, String);

#[derive(Default)]
pub struct Cancels(Mutex<HashMap<Name, CancellationToken>>);

/// A call's place in the registry; removed when dropped.
pub struct Registered {
    cancels: Arc<Cancels>,
    name: Name,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.cancels
            .0
            .lock()
            .expect("cancels lock")
            .remove(&self.name);
    }
}

impl Cancels {
    /// Registers the call of `key_digest` with request id `id` (its JSON text).
    /// A second call with the same id replaces the first in the registry.
    pub fn register(
        self: &Arc<Self>,
        key_digest: String,
        id: String,
        token: CancellationToken,
    ) -> Registered {
        let name = (key_digest, id);
        self.0
            .lock()
            .expect("cancels lock")
            .insert(name.clone(), token);
        Registered {
            cancels: self.clone(),
            name,
        }
    }

    /// Cancels that call, if it is in flight; says whether it was.
    pub fn cancel(&self, key_digest: &str, id: &str) -> bool {
        let token = self
            .0
            .lock()
            .expect("cancels lock")
            .get(&(key_digest.to_string(), id.to_string()))
            .cloned();
        token.map(|t| t.cancel()).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_keys_call_is_cancelled_and_only_while_in_flight() {
        let cancels = Arc::new(Cancels::default());
        let token = CancellationToken::new();
        let entry = cancels.register("k1".into(), "7".into(), token.clone());
        assert!(!cancels.cancel("k2", "7"));
        assert!(!token.is_cancelled());
        assert!(cancels.cancel("k1", "7"));
        assert!(token.is_cancelled());
        drop(entry);
        assert!(!cancels.cancel("k1", "7"));
    }
}
