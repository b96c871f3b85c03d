//! Rust futures as `asyncio.Future`s of the calling event loop.
//!
//! [`future`] turns a future of the Rust client into an `asyncio.Future`
//! without a tokio task and without a tokio thread ever taking the GIL:
//!
//! - The Rust future is polled at once, on the calling thread (inside the
//!   runtime's context). That first poll hands the command to the driver, so
//!   the command is on its way when the method returns, and a call that
//!   completes at once (a message already queued, `connect()` while
//!   connected) resolves without any thread hop. Errors of that first poll
//!   that are argument or validation errors are raised by the call itself.
//! - Otherwise the future stays with its event loop: its waker, called by a
//!   tokio thread when the driver has the answer, only appends the call to
//!   the loop's ready list and, if the list was idle, writes one byte to a
//!   socket pair the loop watches (`loop.add_reader`). The loop's reader then
//!   polls every ready call on the loop's thread and settles the finished
//!   ones: one wake-up serves a whole batch of completions, and results turn
//!   into Python objects where the GIL already is.
//! - Cancelling the asyncio future drops the Rust future (on the loop's
//!   thread): the wait is abandoned (the client's futures are cancellation
//!   safe), nothing is half-sent.

use std::collections::HashMap;
use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Wake, Waker};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::errors;

/// Turns the outcome of a Rust future into the result of the Python future
/// (on the loop's thread, GIL held).
pub(crate) type Convert<T> = fn(Python<'_>, zmqtt::Result<T>) -> PyResult<Py<PyAny>>;

type Settle = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send>;
type Pending = Pin<Box<dyn Future<Output = Settle> + Send>>;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Starts the shared runtime: one worker thread runs every client's driver
/// task (the event loop's thread polls the calls' futures). One is enough
/// for the Python thread it serves (a message costs it well under a
/// microsecond), and a second one costs wake-ups: a command from Python
/// often woke the idle worker, which then had to steal the driver's task.
pub(crate) fn init_runtime() -> PyResult<()> {
    if RUNTIME.get().is_some() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("zmqtt-io")
        .enable_all()
        .build()
        .map_err(|error| {
            PyRuntimeError::new_err(format!("cannot start zmqtt's tokio runtime: {error}"))
        })?;
    let runtime = RUNTIME.get_or_init(|| runtime);
    // Shared with code of this module that might use pyo3-async-runtimes.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(runtime);
    Ok(())
}

/// The shared runtime.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    RUNTIME
        .get()
        .ok_or_else(|| PyRuntimeError::new_err("zmqtt's tokio runtime is not running"))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The calls of one event loop whose futures were woken, and the socket pair
/// that wakes the loop.
struct ReadyList {
    calls: Mutex<Vec<Arc<Call>>>,
    /// Set from the first wake after a drain until the next drain: only that
    /// first wake writes to the socket.
    signalled: AtomicBool,
    wake_writer: UnixStream,
    wake_reader: UnixStream,
}

impl ReadyList {
    fn new() -> std::io::Result<Self> {
        let (wake_writer, wake_reader) = UnixStream::pair()?;
        wake_writer.set_nonblocking(true)?;
        wake_reader.set_nonblocking(true)?;
        Ok(ReadyList {
            calls: Mutex::new(Vec::new()),
            signalled: AtomicBool::new(false),
            wake_writer,
            wake_reader,
        })
    }

    /// Called by any thread (a waker): queue `call`, wake the loop if needed.
    fn push(&self, call: Arc<Call>) {
        lock(&self.calls).push(call);
        if !self.signalled.swap(true, Ordering::SeqCst) {
            // A full socket already holds a wake-up: nothing is lost.
            let _ = (&self.wake_writer).write(&[1]);
        }
    }

    /// On the loop's thread: everything queued so far. The socket is emptied
    /// before `signalled` is cleared, so a wake that raced with the drain
    /// either is in the list taken here or writes a new byte.
    fn take(&self) -> Vec<Arc<Call>> {
        let mut sink = [0u8; 64];
        loop {
            match (&self.wake_reader).read(&mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.signalled.store(false, Ordering::SeqCst);
        std::mem::take(&mut *lock(&self.calls))
    }
}

/// The ready lists of the live event loops, by the loop object's address
/// (removed by a `weakref.finalize` when the loop goes away).
static READY_LISTS: Mutex<Option<HashMap<usize, Arc<ReadyList>>>> = Mutex::new(None);

/// The ready list of `event_loop`, made and registered with the loop
/// (`add_reader`) on first use.
fn ready_list(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<ReadyList>> {
    let key = event_loop.as_ptr() as usize;
    if let Some(list) = lock(&READY_LISTS)
        .get_or_insert_with(HashMap::new)
        .get(&key)
    {
        return Ok(Arc::clone(list));
    }
    let list = Arc::new(ReadyList::new().map_err(|error| {
        PyRuntimeError::new_err(format!("cannot make zmqtt's wake-up socket: {error}"))
    })?);
    let drain = Drain {
        list: Arc::clone(&list),
    };
    event_loop.call_method1("add_reader", (list.wake_reader.as_raw_fd(), drain))?;
    let forget = Forget { key };
    py.import("weakref")?
        .call_method1("finalize", (event_loop, forget))?;
    lock(&READY_LISTS)
        .get_or_insert_with(HashMap::new)
        .insert(key, Arc::clone(&list));
    Ok(list)
}

/// The loop's reader: polls the woken calls, settles the finished ones.
#[pyclass(frozen)]
struct Drain {
    list: Arc<ReadyList>,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let runtime = runtime()?;
        let _context = runtime.enter();
        for call in self.list.take() {
            call.poll(py);
        }
        Ok(())
    }
}

/// Forgets the ready list of a loop that was garbage collected; its socket
/// pair closes with the last call that still refers to it.
#[pyclass(frozen)]
struct Forget {
    key: usize,
}

#[pymethods]
impl Forget {
    fn __call__(&self) {
        let removed = lock(&READY_LISTS)
            .as_mut()
            .and_then(|lists| lists.remove(&self.key));
        if let Some(list) = removed {
            // Calls still queued would never be polled again.
            drop(list.take());
        }
    }
}

/// One call waiting for its Rust future.
struct Call {
    /// `None` once finished or cancelled.
    future: Mutex<Option<Pending>>,
    /// The asyncio future; taken (on the loop's thread) when settled.
    target: Mutex<Option<Py<PyAny>>>,
    list: Arc<ReadyList>,
    /// In the ready list already: further wakes until the poll are no-ops.
    queued: AtomicBool,
}

impl Wake for Call {
    fn wake(self: Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            let list = Arc::clone(&self.list);
            list.push(self);
        }
    }
}

impl Call {
    /// On the loop's thread (GIL held, runtime entered).
    fn poll(self: Arc<Self>, py: Python<'_>) {
        self.queued.store(false, Ordering::SeqCst);
        let waker = Waker::from(Arc::clone(&self));
        let settle = {
            let mut future = lock(&self.future);
            let Some(pending) = future.as_mut() else {
                return;
            };
            match pending.as_mut().poll(&mut Context::from_waker(&waker)) {
                Poll::Pending => return,
                Poll::Ready(settle) => {
                    *future = None;
                    settle
                }
            }
        };
        let Some(target) = lock(&self.target).take() else {
            return;
        };
        let target = target.bind(py);
        // Cancelled meanwhile: the outcome is dropped. A failure to settle
        // has nobody to report to: it goes to `sys.unraisablehook`.
        let outcome = match target.call_method0("done") {
            Ok(done) if done.is_truthy().unwrap_or(true) => return,
            _ => settle(py),
        };
        if let Err(error) = complete(py, target, outcome) {
            error.write_unraisable(py, Some(target));
        }
    }
}

/// A no-op waker for the first poll, which happens before the call exists:
/// a wake during it is caught by polling again once the call is registered.
fn noop_waker() -> &'static Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    static NOOP: OnceLock<Waker> = OnceLock::new();
    NOOP.get_or_init(|| Waker::from(Arc::new(Noop)))
}

/// An `asyncio.Future` of the running loop that `future`'s outcome resolves
/// (see the module docs). Must be called on a thread running an event loop.
pub(crate) fn future<'py, F, T>(
    py: Python<'py>,
    future: F,
    convert: Convert<T>,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = zmqtt::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let event_loop = pyo3_async_runtimes::get_running_loop(py)?;
    let runtime = runtime()?;
    let _context = runtime.enter();
    let mut future: Pin<Box<F>> = Box::pin(future);
    if let Poll::Ready(outcome) = future.as_mut().poll(&mut Context::from_waker(noop_waker())) {
        if let Err(error) = &outcome {
            if errors::is_validation(error) {
                return Err(errors::to_pyerr(py, error));
            }
        }
        let py_future = event_loop.call_method0("create_future")?;
        complete(py, &py_future, convert(py, outcome))?;
        return Ok(py_future);
    }
    let py_future = event_loop.call_method0("create_future")?;
    let pending: Pending = Box::pin(async move {
        let outcome = future.await;
        let settle: Settle = Box::new(move |py| convert(py, outcome));
        settle
    });
    let call = Arc::new(Call {
        future: Mutex::new(Some(pending)),
        target: Mutex::new(Some(py_future.clone().unbind())),
        list: ready_list(py, &event_loop)?,
        queued: AtomicBool::new(false),
    });
    py_future.call_method1(
        "add_done_callback",
        (Canceller {
            call: Arc::downgrade(&call),
        },),
    )?;
    // The first poll had no waker to keep: this one registers the call's.
    Arc::clone(&call).poll(py);
    Ok(py_future)
}

/// A future of the running loop that is already resolved with `result`.
pub(crate) fn ready<'py>(
    py: Python<'py>,
    result: PyResult<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py_future = pyo3_async_runtimes::get_running_loop(py)?.call_method0("create_future")?;
    complete(py, &py_future, result)?;
    Ok(py_future)
}

fn complete(
    py: Python<'_>,
    future: &Bound<'_, PyAny>,
    result: PyResult<Py<PyAny>>,
) -> PyResult<()> {
    match result {
        Ok(value) => future.call_method1("set_result", (value,))?,
        Err(error) => future.call_method1("set_exception", (error.into_value(py),))?,
    };
    Ok(())
}

/// Drops the Rust future when its asyncio future is cancelled (a done
/// callback). Holds the call weakly: the call holds the asyncio future.
#[pyclass(frozen)]
struct Canceller {
    call: Weak<Call>,
}

#[pymethods]
impl Canceller {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if !future.call_method0("cancelled")?.is_truthy()? {
            return Ok(());
        }
        if let Some(call) = self.call.upgrade() {
            let _context = runtime()?.enter();
            drop(lock(&call.future).take());
            drop(lock(&call.target).take());
        }
        Ok(())
    }
}
