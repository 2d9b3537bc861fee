//! The accept loop, and the limits that keep clients without a key from holding the
//! server: at most `max_connections` open at once and `max_per_ip` from one address
//! (a connection past either gets a 503 answer and is closed, never a reset);
//! a request's headers must arrive within `header_timeout` of the connection's
//! start or of the previous answer (hyper's timer: a slow-headers client is cut
//! off); and a connection with no request in flight and nothing read for
//! `idle_timeout` is closed. Each connection (and its TLS handshake) runs in its
//! own task, so a slow one never holds up another.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_ip: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Refusals written at once; past that a surplus connection is just closed.
pub const REFUSING: usize = 1024;
/// How long a refusal may take to write its answer.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// How long a refused connection is read after the answer, so that what the client
/// had sent is not left unread (which would make the close a reset).
const REFUSAL_DRAIN: Duration = Duration::from_millis(200);

/// Open connections, in all and by address.
#[derive(Default)]
struct Open {
    total: AtomicUsize,
    by_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// The address a per-address cap counts: an IPv6 client holds a whole /64 (its
/// provider gives it one), so a /64 counts as one address.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
        v4 => v4,
    }
}

/// One admitted connection; counted down when dropped.
struct Admitted {
    open: Arc<Open>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut by_ip = self.open.by_ip.lock().expect("connections lock");
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
        self.open.total.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Open {
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Result<Admitted, &'static str> {
        let mut by_ip = self.by_ip.lock().expect("connections lock");
        if self.total.load(Ordering::Acquire) >= limits.max_connections {
            return Err("too_many_connections");
        }
        let n = by_ip.entry(ip).or_insert(0);
        if *n >= limits.max_per_ip {
            return Err("too_many_from_address");
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::AcqRel);
        Ok(Admitted {
            open: self.clone(),
            ip,
        })
    }
}

/// When a connection last read a byte, and how many of its requests are in flight.
struct Activity {
    born: Instant,
    last_read_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_read_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }
}

/// A socket that notes when it last read something.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            let now = self.activity.born.elapsed().as_millis() as u64;
            self.activity.last_read_ms.store(now, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `stop`; then lets open connections finish
/// their requests (within `grace`).
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
    grace: Duration,
    on_refused: impl Fn(&'static str) + Send + Sync + 'static,
) {
    let open = Arc::new(Open::default());
    let refusing = Arc::new(Semaphore::new(REFUSING));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.cancelled() => break,
        };
        let (stream, peer): (TcpStream, SocketAddr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, say: wait a little, as axum does.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match open.admit(source(peer.ip()), &limits) {
            Ok(admitted) => {
                let (tls, app, stop) = (tls.clone(), app.clone(), stop.clone());
                let peer = Peer(source(peer.ip()));
                tokio::spawn(async move {
                    connection(stream, peer, tls, app, limits, stop).await;
                    drop(admitted);
                });
            }
            Err(why) => {
                on_refused(why);
                if let Ok(permit) = refusing.clone().try_acquire_owned() {
                    let message = if why == "too_many_connections" {
                        format!(
                            "The server has {} connections open, its most",
                            limits.max_connections
                        )
                    } else {
                        format!(
                            "Too many connections from this address (at most {})",
                            limits.max_per_ip
                        )
                    };
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let _ =
                            tokio::time::timeout(REFUSAL_TIME, refuse(stream, tls, &message)).await;
                        drop(permit);
                    });
                }
            }
        }
    }
    // Stopped: every connection is told to finish (each closes after its request).
    let deadline = Instant::now() + grace;
    while open.total.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The address a request came from (its connection's), as the limits count it.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub IpAddr);

/// One connection, until the client closes it, a limit ends it, or the server stops.
async fn connection(
    stream: TcpStream,
    peer: Peer,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
) {
    let activity = Arc::new(Activity {
        born: Instant::now(),
        last_read_ms: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
    });
    let io = Watched {
        stream,
        activity: activity.clone(),
    };
    match tls {
        None => http(io, peer, app, limits, stop, activity).await,
        Some(acceptor) => {
            match tokio::time::timeout(limits.header_timeout, acceptor.accept(io)).await {
                Ok(Ok(tls)) => http(tls, peer, app, limits, stop, activity).await,
                Ok(Err(e)) => tracing::debug!("TLS handshake: {e}"),
                Err(_) => tracing::debug!("TLS handshake: timed out"),
            }
        }
    }
}

/// A request in flight on its connection; counted down when its answer is made.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn http<I>(
    io: I,
    peer: Peer,
    app: Router,
    limits: Limits,
    stop: CancellationToken,
    activity: Arc<Activity>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            activity.in_flight.fetch_add(1, Ordering::AcqRel);
            request.extensions_mut().insert(peer);
            let busy = Busy(activity.clone());
            let mut app = app.clone();
            async move {
                let answer =
                    tower_service::Service::call(&mut app, request.map(axum::body::Body::new))
                        .await;
                drop(busy);
                answer
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(16);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = tick.tick(), if !closing => {
                let idle = activity.in_flight.load(Ordering::Acquire) == 0
                    && activity.idle_for() >= limits.idle_timeout;
                if idle {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = stop.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// A 503 for a connection past a limit: the answer, then what the client sent is
/// read and dropped before the close, so the client reads the answer, not a reset.
async fn refuse(stream: TcpStream, tls: Option<TlsAcceptor>, message: &str) {
    let body = crate::jsonrpc::error(None, crate::jsonrpc::REFUSED, message, None).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    match tls {
        None => write_and_drain(stream, answer.as_bytes()).await,
        Some(acceptor) => {
            if let Ok(tls) = acceptor.accept(stream).await {
                write_and_drain(tls, answer.as_bytes()).await;
            }
        }
    }
}

async fn write_and_drain(mut io: impl AsyncRead + AsyncWrite + Unpin, answer: &[u8]) {
    if io.write_all(answer).await.is_err() || io.flush().await.is_err() {
        return;
    }
    let _ = io.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 4096];
        while let Ok(n) = io.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_DRAIN, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_64_counts_as_one_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source(a), source(b));
        assert_ne!(source(a), source(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(source(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
