//! Keeping tokio threads out of a Python that is shutting down.
//!
//! Tokio threads attach to Python for one thing only: forwarding a log
//! record (futures are settled on the loop's thread, see `bridge`). A thread that
//! is attached when the interpreter finalizes is killed in the middle of it,
//! which aborts the process. So every such use goes through [`enter`], and an
//! `atexit` hook (which runs before finalization) refuses new ones and waits,
//! with the GIL released, until those under way are done.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

static GONE: AtomicBool = AtomicBool::new(false);
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// The longest the exit hook waits for tokio threads to leave Python.
const EXIT_WAIT: Duration = Duration::from_secs(2);

/// Permission for a tokio thread to attach to Python, while it lives.
pub(crate) struct Entry(());

impl Drop for Entry {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `None` once the interpreter is shutting down: stay away from Python.
pub(crate) fn enter() -> Option<Entry> {
    ACTIVE.fetch_add(1, Ordering::SeqCst);
    if GONE.load(Ordering::SeqCst) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
    Some(Entry(()))
}

/// Whether the interpreter is shutting down.
pub(crate) fn python_gone() -> bool {
    GONE.load(Ordering::SeqCst)
}

/// Registers the exit hook.
pub(crate) fn install(py: Python<'_>) -> PyResult<()> {
    let hook = wrap_pyfunction!(at_exit, py)?;
    py.import("atexit")?.call_method1("register", (hook,))?;
    Ok(())
}

/// Run by `atexit`: no new entries; those under way finish first.
#[pyfunction]
fn at_exit(py: Python<'_>) {
    GONE.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + EXIT_WAIT;
        while ACTIVE.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}
