//! The consent page's first step, carried by the browser instead of kept here: what
//! the GET checked (client, redirect URI, state, PKCE challenge, CSRF token), signed
//! with HMAC-SHA256 under a key made at start. So a stranger who opens /authorize
//! as often as it likes costs the server no memory; a sign-in is kept only once a
//! valid MCP key was entered. A restart voids the tickets in flight (the user
//! starts again from the application).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<sha2::Sha256>;

/// How long a ticket is good for.
const TICKET_SECONDS: u64 = 600;

/// What the first page vouches for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Ticket {
    pub client_id: String,
    pub client_name: String,
    pub self_registered: bool,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub challenge: String,
    pub csrf: String,
    expires: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Ticket {
    pub fn new(
        client_id: String,
        client_name: String,
        self_registered: bool,
        redirect_uri: String,
        state: Option<String>,
        challenge: String,
        csrf: String,
    ) -> Self {
        Self {
            client_id,
            client_name,
            self_registered,
            redirect_uri,
            state,
            challenge,
            csrf,
            expires: now() + TICKET_SECONDS,
        }
    }
}

pub struct Tickets {
    key: [u8; 32],
}

impl Tickets {
    pub fn new() -> Self {
        Self {
            key: rand::random(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// `base64url(json).base64url(tag)`.
    pub fn seal(&self, ticket: &Ticket) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(ticket).expect("a ticket is JSON"));
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// The ticket, when this process sealed it and it has not expired.
    pub fn open(&self, sealed: &str) -> Option<Ticket> {
        let (body, tag) = sealed.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&tag).ok()?;
        let ticket: Ticket = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (ticket.expires > now()).then_some(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        Ticket::new(
            "mcp_client_x".into(),
            "X".into(),
            true,
            "https://x.example/cb".into(),
            Some("st".into()),
            "c".repeat(43),
            "csrf".into(),
        )
    }

    #[test]
    fn only_this_process_opens_its_unexpired_tickets() {
        let (tickets, other) = (Tickets::new(), Tickets::new());
        let sealed = tickets.seal(&ticket());
        assert_eq!(tickets.open(&sealed), Some(ticket()));
        assert_eq!(other.open(&sealed), None, "another key");
        let (body, tag) = sealed.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(body).unwrap())
                .unwrap()
                .replace("x.example", "evil.example"),
        );
        assert_eq!(
            tickets.open(&format!("{forged}.{tag}")),
            None,
            "a changed body"
        );
        let mut old = ticket();
        old.expires = now() - 1;
        assert_eq!(tickets.open(&tickets.seal(&old)), None, "expired");
    }
}
