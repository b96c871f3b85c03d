//! A fault-injection TCP proxy between a client and an upstream broker.
//!
//! The test points the client at [`FaultProxy::addr`] and changes the
//! proxy's behaviour while the client runs: [`FaultProxy::cut`] drops every
//! live connection with a TCP reset, [`FaultProxy::stall`] holds bytes
//! without closing anything (a peer that stopped answering),
//! [`FaultProxy::delay`] slows every chunk, [`FaultProxy::refuse_new`] closes
//! new connections as soon as they are accepted.
//!
//! The controls are one `watch` value read by every forwarding task, so a
//! change applies at once to live and future connections. Every task lives
//! in a `JoinSet` owned by the accept task, which is aborted when the proxy
//! is dropped: dropping the proxy closes its listener and every connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// How long [`FaultProxy::wait_for_connections`] waits before failing.
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Size of the buffer one forwarding direction reads into (one "chunk").
const CHUNK_SIZE: usize = 16 * 1024;

/// What the test asked for; every forwarding task watches it.
#[derive(Clone, Copy, Debug, Default)]
struct Controls {
    stall_to_upstream: bool,
    stall_to_client: bool,
    delay: Duration,
    refuse_new: bool,
    /// Bumped by `cut`: connections accepted before the bump close.
    cut_epoch: u64,
}

impl Controls {
    fn stalls(&self, direction: Direction) -> bool {
        match direction {
            Direction::ToUpstream => self.stall_to_upstream,
            Direction::ToClient => self.stall_to_client,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Direction {
    ToUpstream,
    ToClient,
}

/// Why a connection ended early (both sides are then reset).
#[derive(Debug)]
enum Abort {
    /// The test called `cut`, or the proxy was dropped.
    Cut,
    /// A read or write failed on one side.
    Failed,
}

/// A TCP proxy on a free `127.0.0.1` port forwarding to one upstream address.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    controls: watch::Sender<Controls>,
    accepted: watch::Receiver<usize>,
    refused: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    accept_task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding to `upstream`. Must be called inside a tokio runtime.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = bind_loopback();
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(error) => panic!("proxy: no local address: {error}"),
        };
        let (controls, controls_rx) = watch::channel(Controls::default());
        let (accepted_tx, accepted) = watch::channel(0);
        let refused = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let accept_task = tokio::spawn(accept_loop(
            listener,
            upstream,
            controls_rx,
            accepted_tx,
            Arc::clone(&refused),
            Arc::clone(&open),
        ));
        FaultProxy {
            addr,
            upstream,
            controls,
            accepted,
            refused,
            open,
            accept_task,
        }
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients should connect to (host `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address every connection is forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Resets every live connection, on both sides (RST, no FIN): the client
    /// and the broker both see an abrupt loss. New connections are forwarded
    /// as usual.
    pub fn cut(&self) {
        self.controls
            .send_modify(|controls| controls.cut_epoch = controls.cut_epoch.wrapping_add(1));
    }

    /// Stops forwarding in both directions without closing anything: bytes
    /// are held (the proxy stops reading once it holds one chunk) until
    /// [`FaultProxy::resume`].
    pub fn stall(&self) {
        self.controls.send_modify(|controls| {
            controls.stall_to_upstream = true;
            controls.stall_to_client = true;
        });
    }

    /// Stops forwarding from the upstream to the client only: the client's
    /// packets still reach the broker, the answers are held.
    pub fn stall_upstream_to_client(&self) {
        self.controls
            .send_modify(|controls| controls.stall_to_client = true);
    }

    /// Forwards again everything held by [`FaultProxy::stall`] or
    /// [`FaultProxy::stall_upstream_to_client`], in order.
    pub fn resume(&self) {
        self.controls.send_modify(|controls| {
            controls.stall_to_upstream = false;
            controls.stall_to_client = false;
        });
    }

    /// Waits `delay` before forwarding each chunk, in both directions
    /// (`Duration::ZERO` turns it off).
    pub fn delay(&self, delay: Duration) {
        self.controls.send_modify(|controls| controls.delay = delay);
    }

    /// While `true`, new connections are accepted and closed at once, without
    /// contacting the upstream. Live connections are not affected.
    pub fn refuse_new(&self, refuse: bool) {
        self.controls
            .send_modify(|controls| controls.refuse_new = refuse);
    }

    /// TCP connections accepted so far, refused ones included.
    pub fn connections_accepted(&self) -> usize {
        *self.accepted.borrow()
    }

    /// Connections closed at once because of [`FaultProxy::refuse_new`].
    pub fn connections_refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Connections being forwarded right now (accepted, not refused, not yet
    /// closed on both sides).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` connections have been accepted (counting
    /// from the start, refused ones included); panics after 10 s.
    pub async fn wait_for_connections(&self, count: usize) {
        let mut accepted = self.accepted.clone();
        let waited = tokio::time::timeout(WAIT_TIMEOUT, accepted.wait_for(|n| *n >= count)).await;
        match waited {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                panic!("proxy: the accept loop ended while waiting for connection #{count}")
            }
            Err(_) => panic!(
                "proxy: waited {WAIT_TIMEOUT:?} for connection #{count}, only {} accepted",
                self.connections_accepted()
            ),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Dropping the accept task's future drops its listener and its
        // JoinSet, which aborts every connection task.
        self.accept_task.abort();
    }
}

fn bind_loopback() -> TcpListener {
    let bound = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .and_then(TcpListener::from_std);
    match bound {
        Ok(listener) => listener,
        Err(error) => panic!("cannot bind a loopback listener: {error}"),
    }
}

/// Counts a connection as open while alive.
struct OpenGuard(Arc<AtomicUsize>);

impl OpenGuard {
    fn new(open: &Arc<AtomicUsize>) -> OpenGuard {
        open.fetch_add(1, Ordering::SeqCst);
        OpenGuard(Arc::clone(open))
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    controls: watch::Receiver<Controls>,
    accepted: watch::Sender<usize>,
    refused: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            incoming = listener.accept() => {
                let Ok((client, _)) = incoming else { continue };
                let now = *controls.borrow();
                // Counters are updated before `accepted` so that a test woken
                // by `wait_for_connections` sees them already.
                if now.refuse_new {
                    refused.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                } else {
                    let guard = OpenGuard::new(&open);
                    connections.spawn(forward(
                        client,
                        upstream,
                        controls.clone(),
                        now.cut_epoch,
                        guard,
                    ));
                }
                accepted.send_modify(|count| *count += 1);
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Forwards one client connection until both sides close, or resets both on
/// a cut or an I/O error.
async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut controls: watch::Receiver<Controls>,
    epoch: u64,
    _open: OpenGuard,
) {
    let connected = tokio::select! {
        _ = cut_after(&mut controls, epoch) => None,
        connected = TcpStream::connect(upstream) => connected.ok(),
    };
    let Some(mut server) = connected else {
        let _ = client.set_zero_linger();
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let result = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        tokio::try_join!(
            pump(
                client_read,
                server_write,
                Direction::ToUpstream,
                controls.clone(),
                epoch
            ),
            pump(
                server_read,
                client_write,
                Direction::ToClient,
                controls,
                epoch
            ),
        )
    };
    if result.is_err() {
        // SO_LINGER 0: closing sends RST, so both peers see an abrupt loss.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
}

/// Copies one direction chunk by chunk, applying delay and stall. At end of
/// stream it half-closes the destination (the other direction goes on).
async fn pump(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    direction: Direction,
    mut controls: watch::Receiver<Controls>,
    epoch: u64,
) -> Result<(), Abort> {
    let mut chunk = vec![0_u8; CHUNK_SIZE];
    loop {
        let read = tokio::select! {
            _ = cut_after(&mut controls, epoch) => return Err(Abort::Cut),
            read = from.read(&mut chunk) => read,
        };
        let len = match read {
            Ok(0) => {
                let _ = to.shutdown().await;
                return Ok(());
            }
            Ok(len) => len,
            Err(_) => return Err(Abort::Failed),
        };
        let delay = controls.borrow().delay;
        if !delay.is_zero() {
            tokio::select! {
                _ = cut_after(&mut controls, epoch) => return Err(Abort::Cut),
                () = tokio::time::sleep(delay) => {}
            }
        }
        // Hold the chunk while this direction is stalled.
        let cut = controls
            .wait_for(|now| now.cut_epoch != epoch || !now.stalls(direction))
            .await
            .map_or(true, |now| now.cut_epoch != epoch);
        if cut {
            return Err(Abort::Cut);
        }
        let bytes = chunk.get(..len).unwrap_or_default();
        tokio::select! {
            _ = cut_after(&mut controls, epoch) => return Err(Abort::Cut),
            written = to.write_all(bytes) => {
                if written.is_err() {
                    return Err(Abort::Failed);
                }
            }
        }
    }
}

/// Completes once a cut newer than `epoch` happened (or the proxy is gone).
async fn cut_after(controls: &mut watch::Receiver<Controls>, epoch: u64) {
    let _ = controls.wait_for(|now| now.cut_epoch != epoch).await;
}
