//! The HTTP server loop, on hyper's own connection settings rather than hand-rolled timers:
//! a header read timeout (hyper also applies it while a keep-alive connection waits for its
//! next request, so it is the idle timeout too), accept errors such as "too many open files"
//! backed off instead of spun on, and a graceful shutdown that lets requests in flight
//! finish (for at most the body read timeout) and closes every other connection at once. The body read timeout is the gateway's (it reads the body).
//!
//! At the cap on open connections the loop keeps accepting and closes the oldest connection
//! that is not serving a request (one that sent nothing, is dribbling its headers, or idles
//! between keep-alive requests): a flood of idle or slow clients then cannot keep `/healthz`
//! or Drift's webhooks waiting in the listen backlog. When every connection is serving a
//! request the loop waits for one to finish. No maintained layer does this (tower's limits
//! count requests, not connections), so it is written here, in the few lines below.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;

/// How long the loop waits after a failed accept (the process is out of file descriptors,
/// say) before trying again: long enough not to spin, short enough to recover at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Limits on clients (`[server]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Longest wait for a request's headers, and for the next request on an idle keep-alive
    /// connection.
    pub header_read_timeout: Duration,
    /// Longest wait for a webhook's body once its headers arrived.
    pub body_read_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

/// One open connection: how many of its requests are in flight, and how to close it.
struct Conn {
    busy: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Open {
    next: u64,
    conns: BTreeMap<u64, Conn>,
}

impl Open {
    /// Asks the oldest connection that is serving no request to close; false when every
    /// connection is busy.
    fn evict_idle(&mut self) -> bool {
        let victim = self
            .conns
            .iter()
            .find(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        match victim.and_then(|id| self.conns.remove(&id)) {
            Some(c) => {
                c.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Removes the connection from [`Open`] when its task ends, however it ends.
struct Registered {
    open: Arc<Mutex<Open>>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open.lock().conns.remove(&self.id);
    }
}

/// Counts a request in flight until its response body is dropped (written or abandoned).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(busy: &Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        InFlight(busy.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for the connections
/// still serving a request.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let open = Arc::new(Mutex::new(Open::default()));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed; retrying shortly");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                // At the cap: make room by closing an idle connection, else wait for one.
                open.lock().evict_idle();
                tokio::select! {
                    s = slots.clone().acquire_owned() => match s {
                        Ok(s) => s,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let busy = Arc::new(AtomicUsize::new(0));
        let close = Arc::new(Notify::new());
        let registered = {
            let mut o = open.lock();
            let id = o.next;
            o.next += 1;
            o.conns.insert(
                id,
                Conn {
                    busy: busy.clone(),
                    close: close.clone(),
                },
            );
            Registered {
                open: open.clone(),
                id,
            }
        };
        let service = {
            let app = app.clone();
            tower::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let in_flight = InFlight::enter(&busy);
                let app = app.clone();
                async move {
                    let mut req = req.map(Body::new);
                    // Handlers that need the client's address (the widget's per-IP limit)
                    // read it as axum's ConnectInfo.
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    let resp = app.oneshot(req).await?;
                    // The connection counts as busy until the response is written.
                    Ok::<_, Infallible>(resp.map(|b| {
                        Body::new(b.map_err(move |e| {
                            let _ = &in_flight;
                            e
                        }))
                    }))
                }
            })
        };
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                () = close.notified() => {
                    tracing::debug!("closed an idle connection to admit a new one at the cap");
                }
            }
            drop(registered);
            drop(slot);
        });
    }
    drop(listener);
    // Requests in flight finish; connections serving none (idle, silent, dribbling headers)
    // are closed now rather than waited for until their header timeout.
    {
        let mut o = open.lock();
        while o.evict_idle() {}
    }
    if tokio::time::timeout(limits.body_read_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight at shutdown after the body read timeout; closing");
    }
    Ok(())
}
