//! Client ID Metadata Documents (the MCP specification's preference since
//! 2025-11-25): a client_id that is an https URL names a JSON document describing
//! the client, which the server fetches. The fetch is the server reaching out on a
//! stranger's word, so it is narrow: https only, the address checked public before
//! connecting (and the connection made to that address, so DNS cannot change its
//! mind), 5 seconds, 5 KiB, no redirect followed, and the document must name itself.
//! `--oauth-allow-private-clients` (tests) allows http and private addresses.
//! What was read is kept in this process for an hour, never taken back from the
//! database (whoever holds the server's login could have written anything there).

use mcp_auth_core::token;
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(5);
/// One answer for every way a reachable-looking address fails to give a document
/// (refused, TLS, HTTP status, time): the consent page is no port scanner.
const UNREADABLE: &str =
    "client_id: its metadata document could not be read (https, answered 200 within 5 seconds)";
const MAX_BYTES: usize = 5 * 1024;

/// What a document says of its client.
#[derive(Clone)]
pub struct Document {
    pub client_name: String,
    pub redirect_uris: Vec<String>,
}

pub struct Fetcher {
    private_ok: bool,
    /// The hosts and ports this server answers on: a document is never fetched
    /// from one (the server would fetch itself, as often as the URL nests).
    own: Vec<(String, u16)>,
    tls: tokio_rustls::TlsConnector,
    /// Documents read in the last hour, by URL (this process's own reading).
    read: Mutex<HashMap<String, (Instant, Document)>>,
}

/// How long a document read is used before it is read again.
const KEEP_FOR: Duration = Duration::from_secs(3600);
/// Documents kept at once.
const MAX_KEPT: usize = 1024;

/// Whether `client_id` is the URL of a metadata document (not a registered id).
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Whether an address is on the public internet (not loopback, private, link-local,
/// shared, documentation, multicast or reserved).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0 && c == 0))
        }
        // Only global unicast (2000::/3), and none of the prefixes in it that lead
        // to IPv4 (6to4, NAT64) or are reserved (documentation, ORCHID, Teredo).
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            is_public(IpAddr::V4(v6.to_ipv4_mapped().expect("checked")))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            (s[0] & 0xe000) == 0x2000
                && s[0] != 0x2002
                && !(s[0] == 0x2001
                    && (s[1] == 0x0db8 || s[1] < 0x0200 || (s[1] & 0xfff0) == 0x0010))
                && !(s[0] == 0x0064 && s[1] == 0xff9b)
        }
    }
}

impl Fetcher {
    pub fn new(private_ok: bool, own: Vec<(String, u16)>) -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            private_ok,
            own,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            read: Mutex::new(HashMap::new()),
        }
    }

    /// The document at `client_id`: as read within the hour, else read now.
    pub async fn document(&self, client_id: &str) -> Result<Document, String> {
        self.check_url(client_id)?;
        let kept = self
            .read
            .lock()
            .expect("documents lock")
            .get(client_id)
            .cloned();
        if let Some((_, doc)) = kept.filter(|(at, _)| at.elapsed() < KEEP_FOR) {
            return Ok(doc);
        }
        let doc = self.fetch(client_id).await?;
        let mut read = self.read.lock().expect("documents lock");
        if read.len() >= MAX_KEPT {
            read.retain(|_, (at, _)| at.elapsed() < KEEP_FOR);
            if read.len() >= MAX_KEPT {
                read.clear();
            }
        }
        read.insert(client_id.to_string(), (Instant::now(), doc.clone()));
        Ok(doc)
    }

    /// The document at `client_id`, read now, or why it cannot be used (shown to the user).
    async fn fetch(&self, client_id: &str) -> Result<Document, String> {
        match tokio::time::timeout(TIMEOUT, self.get(client_id)).await {
            Ok(result) => result,
            Err(_) => Err(UNREADABLE.into()),
        }
    }

    /// The document's URL, when this server may use a document there at all (also
    /// for one read before, perhaps by a server with other rules).
    pub fn check_url(&self, client_id: &str) -> Result<url::Url, String> {
        let url = url::Url::parse(client_id).map_err(|_| "client_id: is not a URL".to_string())?;
        if !(url.scheme() == "https" || (self.private_ok && url.scheme() == "http")) {
            return Err("client_id: a metadata document's URL must use https".into());
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.path() == "/" {
            return Err(
                "client_id: a metadata document's URL needs a path, and no fragment or user".into(),
            );
        }
        let host = url
            .host_str()
            .unwrap_or("")
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(0);
        if self.own.iter().any(|(h, p)| *h == host && *p == port) {
            return Err("client_id: a metadata document cannot be on this server".into());
        }
        Ok(url)
    }

    async fn get(&self, client_id: &str) -> Result<Document, String> {
        let url = self.check_url(client_id)?;
        let https = url.scheme() == "https";
        let host = url
            .host_str()
            .ok_or("client_id: names no host")?
            .to_string();
        let port = url
            .port_or_known_default()
            .ok_or("client_id: names no port")?;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|_| format!("client_id: {host} is not a public address"))?
            .collect();
        if addrs.is_empty() || (!self.private_ok && !addrs.iter().all(|a| is_public(a.ip()))) {
            return Err(format!("client_id: {host} is not a public address"));
        }
        let tcp = TcpStream::connect(addrs[0])
            .await
            .map_err(|_| UNREADABLE.to_string())?;
        // The Host header names the port when the URL does.
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let bytes = if https {
            let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|_| format!("client_id: {host} is not a TLS name"))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|_| UNREADABLE.to_string())?;
            request(tls, &authority, &target).await?
        } else {
            request(tcp, &authority, &target).await?
        };
        read_document(client_id, &bytes)
    }
}

/// One GET over `io`; the body when the answer is 200 and small enough.
async fn request<I>(io: I, host: &str, target: &str) -> Result<Vec<u8>, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|_| UNREADABLE.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::get(target)
        .header(hyper::header::HOST, host)
        .header(hyper::header::ACCEPT, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("mcp-auth/", env!("CARGO_PKG_VERSION")),
        )
        .body(axum::body::Body::empty())
        .map_err(|_| "client_id: cannot be requested".to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|_| UNREADABLE.to_string())?;
    let status = response.status();
    if status.is_redirection() {
        return Err(
            "client_id: its metadata document redirects, and redirects are not followed".into(),
        );
    }
    if status != hyper::StatusCode::OK {
        return Err(UNREADABLE.into());
    }
    let body = axum::body::Body::new(response.into_body());
    axum::body::to_bytes(body, MAX_BYTES)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| "client_id: its metadata document is over 5 KiB".to_string())
}

/// The document's client, when it names itself and lists its redirect URIs.
fn read_document(client_id: &str, bytes: &[u8]) -> Result<Document, String> {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(bytes) else {
        return Err("client_id: its metadata document is not a JSON object".into());
    };
    if doc.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err("client_id: its metadata document names another client_id".into());
    }
    let redirect_uris: Option<Vec<String>> = doc
        .get("redirect_uris")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect());
    let redirect_uris = redirect_uris
        .filter(|u| !u.is_empty())
        .ok_or("client_id: its metadata document lists no redirect_uris")?;
    let client_name = match doc.get("client_name").and_then(Value::as_str) {
        Some(n) if !n.trim().is_empty() => n.trim().to_string(),
        _ => url::Url::parse(client_id)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| client_id.to_string()),
    };
    // The rules a registration meets, here too, before the page shows any of it.
    if client_name.chars().count() > 200 || client_name.chars().any(token::is_hidden) {
        return Err(
            "client_id: its metadata document's client_name breaks the rules for names".into(),
        );
    }
    if redirect_uris.len() > 10
        || redirect_uris.iter().map(String::len).sum::<usize>() > 4096
        || redirect_uris
            .iter()
            .any(|u| token::redirect_uri_problem(u).is_some())
    {
        return Err(
            "client_id: its metadata document lists a redirect URI that is not allowed".into(),
        );
    }
    Ok(Document {
        client_name,
        redirect_uris,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "198.18.0.1",
            "192.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "fec0::1",
            "100::1",
            "::ffff:0:7f00:1",
            "::127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_document_must_name_itself_and_its_redirects() {
        let id = "https://app.example/client.json";
        let good = br#"{"client_id":"https://app.example/client.json","client_name":"App","redirect_uris":["https://app.example/cb"]}"#;
        assert_eq!(read_document(id, good).unwrap().client_name, "App");
        let other = br#"{"client_id":"https://evil.example/c.json","redirect_uris":["https://app.example/cb"]}"#;
        assert!(read_document(id, other).is_err());
        let none = br#"{"client_id":"https://app.example/client.json"}"#;
        assert!(read_document(id, none).is_err());
        let unnamed = br#"{"client_id":"https://app.example/client.json","redirect_uris":["https://app.example/cb"]}"#;
        assert_eq!(
            read_document(id, unnamed).unwrap().client_name,
            "app.example"
        );
    }
}
