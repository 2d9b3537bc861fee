//! Standard input and output around rmcp's transport. rmcp drops without a reply
//! what it cannot decode (invalid UTF-8 or JSON, batches, over-long lines), and runs
//! two requests that share an id while answering one. JSON-RPC wants an answer for
//! each, so every line is checked here first: a good one goes on to rmcp; a bad one
//! gets its error from the one task that writes stdout, so lines never interleave.

use crate::jsonrpc;
use serde::de::IgnoredAny;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;

/// The longest message accepted (tool arguments are capped at 64 KiB anyway).
pub const MAX_LINE: usize = 4 * 1024 * 1024;

type InFlight = Arc<Mutex<HashSet<String>>>;

/// The (reader, writer) pair to hand to rmcp in place of stdin and stdout.
pub fn transport() -> (DuplexStream, DuplexStream) {
    let (rmcp_in, feed) = tokio::io::duplex(1 << 16);
    let (rmcp_out, drain) = tokio::io::duplex(1 << 16);
    let (errors, errors_rx) = mpsc::unbounded_channel();
    let in_flight = InFlight::default();
    tokio::spawn(read_stdin(feed, errors, in_flight.clone()));
    tokio::spawn(write_stdout(drain, errors_rx, in_flight));
    (rmcp_in, rmcp_out)
}

enum Line {
    Text(Vec<u8>),
    TooLong(usize),
}

/// The next line, without its end; only its length once it passes MAX_LINE.
async fn read_line(r: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Option<Line>> {
    let (mut line, mut total) = (Vec::new(), 0usize);
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok((total > 0).then(|| finish(line, total)));
        }
        let (chunk, used, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        total += chunk.len();
        if total <= MAX_LINE {
            line.extend_from_slice(chunk);
        } else {
            line = Vec::new();
        }
        r.consume(used);
        if done {
            return Ok(Some(finish(line, total)));
        }
    }
}

fn finish(mut line: Vec<u8>, total: usize) -> Line {
    if total > MAX_LINE {
        return Line::TooLong(total);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Line::Text(line)
}

fn error(id: Value, code: i64, message: impl Into<String>) -> String {
    jsonrpc::error(Some(&id), code, &message.into(), None).to_string()
}

enum Verdict {
    /// The message as read (`jsonrpc::Message::body`), for rmcp.
    Forward(Vec<u8>),
    Skip,
    Reply(String),
}

/// What to do with one line from the client.
fn check(bytes: &[u8], in_flight: &InFlight) -> Verdict {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Verdict::Skip;
    }
    let message = match jsonrpc::read(bytes) {
        Ok(m) => m,
        Err(refused) => return Verdict::Reply(refused.to_value().to_string()),
    };
    let mut in_flight = in_flight.lock().expect("in-flight lock");
    if let Some(r) = &message.cancels {
        // A cancelled request may go unanswered; its id is free again.
        in_flight.remove(&r.to_string());
    }
    if let (false, Some(id)) = (message.method.is_empty(), &message.id) {
        if !in_flight.insert(id.to_string()) {
            return Verdict::Reply(error(
                id.clone(),
                jsonrpc::INVALID_REQUEST,
                format!("Invalid Request: id {id} is already used by a request in flight"),
            ));
        }
    }
    Verdict::Forward(message.body)
}

async fn read_stdin(
    mut feed: DuplexStream,
    errors: mpsc::UnboundedSender<String>,
    in_flight: InFlight,
) {
    let mut stdin = BufReader::with_capacity(1 << 16, tokio::io::stdin());
    while let Ok(Some(line)) = read_line(&mut stdin).await {
        let reply = match line {
            Line::TooLong(n) => error(
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                format!("Invalid Request: a message must be at most {MAX_LINE} bytes (got {n})"),
            ),
            Line::Text(bytes) => match check(&bytes, &in_flight) {
                Verdict::Skip => continue,
                Verdict::Reply(e) => e,
                Verdict::Forward(message) => {
                    let sent = async {
                        feed.write_all(&message).await?;
                        feed.write_all(b"\n").await?;
                        feed.flush().await
                    };
                    if sent.await.is_err() {
                        break; // rmcp has ended the session
                    }
                    continue;
                }
            },
        };
        if errors.send(reply).is_err() {
            break;
        }
    }
    // End of input: rmcp sees it too and ends the session.
    let _ = feed.shutdown().await;
}

/// What the writer needs of a message rmcp sends: the id of a response.
#[derive(serde::Deserialize)]
struct Outgoing {
    id: Option<Value>,
    result: Option<IgnoredAny>,
    error: Option<IgnoredAny>,
}

async fn write_stdout(
    drain: DuplexStream,
    mut errors: mpsc::UnboundedReceiver<String>,
    in_flight: InFlight,
) {
    let mut from_rmcp = BufReader::new(drain).lines();
    let mut stdout = tokio::io::stdout();
    loop {
        let line = tokio::select! {
            line = from_rmcp.next_line() => match line {
                Ok(Some(line)) => {
                    if let Ok(Outgoing { id: Some(id), result, error }) = serde_json::from_str(&line) {
                        if result.is_some() || error.is_some() {
                            in_flight.lock().expect("in-flight lock").remove(&id.to_string());
                        }
                    }
                    line
                }
                _ => break,
            },
            Some(line) = errors.recv() => line,
        };
        let written = async {
            stdout.write_all(line.as_bytes()).await?;
            stdout.write_all(b"\n").await?;
            stdout.flush().await
        };
        if written.await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(line: &str) -> Option<Value> {
        match check(line.as_bytes(), &InFlight::default()) {
            Verdict::Reply(e) => Some(serde_json::from_str(&e).unwrap()),
            _ => None,
        }
    }

    #[test]
    fn a_bad_line_is_answered_and_a_blank_one_skipped() {
        let bad = verdict(r#"{"jsonrpc": "2.0", "id": 3, "method": 5}"#).unwrap();
        assert_eq!(
            (bad["id"].as_i64(), bad["error"]["code"].as_i64()),
            (Some(3), Some(-32600))
        );
        assert!(verdict(r#"{"jsonrpc": "2.0", "id": 1, "method": "ping"}"#).is_none());
        assert!(matches!(check(b"   ", &InFlight::default()), Verdict::Skip));
    }

    #[test]
    fn an_id_in_flight_cannot_be_used_again_until_answered_or_cancelled() {
        let in_flight = InFlight::default();
        let ping = br#"{"jsonrpc": "2.0", "id": "a", "method": "ping"}"#;
        assert!(matches!(check(ping, &in_flight), Verdict::Forward(_)));
        assert!(matches!(check(ping, &in_flight), Verdict::Reply(e) if e.contains("already used")));
        let cancel = br#"{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "a"}}"#;
        assert!(matches!(check(cancel, &in_flight), Verdict::Forward(_)));
        assert!(matches!(check(ping, &in_flight), Verdict::Forward(_)));
    }

    #[tokio::test]
    async fn over_long_lines_are_measured_not_kept() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\n{}\r\n");
        let mut r = BufReader::new(&input[..]);
        assert!(
            matches!(read_line(&mut r).await.unwrap(), Some(Line::TooLong(n)) if n == MAX_LINE + 10)
        );
        assert!(matches!(read_line(&mut r).await.unwrap(), Some(Line::Text(t)) if t == b"{}"));
        assert!(read_line(&mut r).await.unwrap().is_none());
    }
}
