//! Rust futures as `asyncio.Future`s of the calling event loop.
//!
//! [`future`] does what `pyo3_async_runtimes::tokio::future_into_py` does,
//! with three differences the contract of `_zmqtt.pyi` asks for:
//!
//! - The Rust future is polled once at once, on the calling thread (inside
//!   the runtime's context, with a no-op waker). That first poll hands the
//!   command to the driver, so the command is on its way when the method
//!   returns, and a call that completes at once (a message already queued,
//!   `connect()` while connected) resolves without any thread hop. Errors of
//!   that first poll that are argument or validation errors are raised by the
//!   call itself.
//! - Otherwise the future goes on on a tokio worker (one task, no GIL). Its
//!   result crosses back as Rust data and is turned into Python objects on
//!   the loop's thread, in the callback given to `loop.call_soon_threadsafe`:
//!   no Python code (dataclass or exception constructors) runs on a tokio
//!   thread.
//! - Cancelling the asyncio future aborts the task, which drops the Rust
//!   future: the wait is abandoned (the client's futures are cancellation
//!   safe), nothing is half-sent.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::{errors, shutdown};

/// Turns the outcome of a Rust future into the result of the Python future
/// (on the loop's thread, GIL held).
pub(crate) type Convert<T> = fn(Python<'_>, zmqtt::Result<T>) -> PyResult<Py<PyAny>>;

type Outcome = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send>;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// Starts the shared runtime: two worker threads run every client's driver
/// task and the waits of the calls (the event loop's thread is the third).
pub(crate) fn init_runtime() -> PyResult<()> {
    if RUNTIME.get().is_some() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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

/// A waker that does nothing: the first poll happens outside any task, the
/// task that polls next registers its own waker.
fn noop_waker() -> &'static Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    static NOOP: OnceLock<Waker> = OnceLock::new();
    NOOP.get_or_init(|| Waker::from(Arc::new(Noop)))
}

/// The shared runtime.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    RUNTIME
        .get()
        .ok_or_else(|| PyRuntimeError::new_err("zmqtt's tokio runtime is not running"))
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
    let mut future: Pin<Box<F>> = Box::pin(future);
    let first = {
        let _context = runtime.enter();
        future.as_mut().poll(&mut Context::from_waker(noop_waker()))
    };
    if let Poll::Ready(outcome) = first {
        if let Err(error) = &outcome {
            if errors::is_validation(error) {
                return Err(errors::to_pyerr(py, error));
            }
        }
        let py_future = event_loop.call_method0("create_future")?;
        settle(py, &py_future, convert(py, outcome))?;
        return Ok(py_future);
    }
    let py_future = event_loop.call_method0("create_future")?;
    let target = py_future.clone().unbind();
    let event_loop = event_loop.unbind();
    let task = runtime.spawn(async move {
        let outcome = future.await;
        let outcome: Outcome = Box::new(move |py| convert(py, outcome));
        // Not while the interpreter shuts down: nobody waits any more.
        let Some(_entry) = shutdown::enter() else {
            return;
        };
        let _ = Python::try_attach(|py| -> PyResult<()> {
            let completion = Bound::new(
                py,
                Completion {
                    future: target,
                    outcome: Mutex::new(Some(outcome)),
                },
            )?;
            // Fails only when the loop is closed: then nobody waits either.
            event_loop
                .bind(py)
                .call_method1("call_soon_threadsafe", (completion,))?;
            Ok(())
        });
    });
    py_future.call_method1(
        "add_done_callback",
        (Canceller {
            task: task.abort_handle(),
        },),
    )?;
    Ok(py_future)
}

/// A future of the running loop that is already resolved with `result`.
pub(crate) fn ready<'py>(
    py: Python<'py>,
    result: PyResult<Py<PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py_future = pyo3_async_runtimes::get_running_loop(py)?.call_method0("create_future")?;
    settle(py, &py_future, result)?;
    Ok(py_future)
}

fn settle(py: Python<'_>, future: &Bound<'_, PyAny>, result: PyResult<Py<PyAny>>) -> PyResult<()> {
    match result {
        Ok(value) => future.call_method1("set_result", (value,))?,
        Err(error) => future.call_method1("set_exception", (error.into_value(py),))?,
    };
    Ok(())
}

/// Resolves a future on the loop's thread (scheduled by the tokio task).
#[pyclass(frozen)]
struct Completion {
    future: Py<PyAny>,
    outcome: Mutex<Option<Outcome>>,
}

#[pymethods]
impl Completion {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let outcome = self
            .outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let Some(outcome) = outcome else {
            return Ok(());
        };
        let future = self.future.bind(py);
        // Cancelled meanwhile: the outcome is dropped.
        if future.call_method0("done")?.is_truthy()? {
            return Ok(());
        }
        settle(py, future, outcome(py))
    }
}

/// Aborts the task when its future is cancelled (a done callback).
#[pyclass(frozen)]
struct Canceller {
    task: AbortHandle,
}

#[pymethods]
impl Canceller {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            self.task.abort();
        }
        Ok(())
    }
}
