//! [`StatusCell`]: a value shared by every handle of a client, changed by
//! its driver, with waiters for changes.
//!
//! Stands in for a `tokio::sync::watch` channel, which costs about 650 bytes
//! per client (it carries eight `Notify`s); an idle client only needs a lock
//! and one `Notify`.

use std::pin::pin;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use tokio::sync::Notify;

/// A shared value with change notification.
#[derive(Debug)]
pub(crate) struct StatusCell<T> {
    value: RwLock<T>,
    /// Woken (all waiters) after every change.
    changed: Notify,
}

impl<T> StatusCell<T> {
    pub(crate) fn new(value: T) -> StatusCell<T> {
        StatusCell {
            value: RwLock::new(value),
            changed: Notify::new(),
        }
    }

    /// Read access; do not hold the guard across an `.await`.
    pub(crate) fn borrow(&self) -> RwLockReadGuard<'_, T> {
        // A panic while holding the lock leaves a value that is still whole.
        self.value.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the value and wakes every waiter.
    pub(crate) fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        self.send_if_modified(|value| {
            modify(value);
            true
        });
    }

    /// Lets `modify` change the value; wakes the waiters only when it
    /// returns `true` (that it changed something). Returns what it returned.
    pub(crate) fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let modified = {
            let mut value = self.value.write().unwrap_or_else(PoisonError::into_inner);
            modify(&mut value)
        };
        if modified {
            self.changed.notify_waiters();
        }
        modified
    }

    /// Waits until `check` returns `Some` for the current value, and returns
    /// that. `check` runs at once, then again after each change.
    pub(crate) async fn wait_for<R>(&self, mut check: impl FnMut(&T) -> Option<R>) -> R {
        loop {
            // Registered before the check: a change made between the check and
            // the await still wakes this waiter.
            let mut notified = pin!(self.changed.notified());
            notified.as_mut().enable();
            // The guard (not `Send`) ends here, before the await.
            let found = check(&self.borrow());
            if let Some(found) = found {
                return found;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::Poll;

    use super::*;

    /// Polls `future` once, without blocking.
    fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        std::pin::Pin::new(future).poll(&mut context)
    }

    #[test]
    fn borrow_sees_modifications() {
        let cell = StatusCell::new(1_u32);
        cell.send_modify(|value| *value += 1);
        assert_eq!(*cell.borrow(), 2);
        assert!(!cell.send_if_modified(|value| {
            *value = 5;
            false
        }));
        // The value still changes; only the waiters are not told.
        assert_eq!(*cell.borrow(), 5);
        assert!(cell.send_if_modified(|_| true));
    }

    #[test]
    fn wait_for_returns_at_once_when_already_true() {
        let cell = StatusCell::new(7_u32);
        let mut wait = Box::pin(cell.wait_for(|value| (*value == 7).then_some(*value)));
        assert_eq!(poll_once(&mut wait), Poll::Ready(7));
    }

    #[test]
    fn modify_wakes_a_waiter() {
        let cell = StatusCell::new(0_u32);
        let mut wait = Box::pin(cell.wait_for(|value| (*value >= 2).then_some(*value)));
        assert!(poll_once(&mut wait).is_pending());
        cell.send_modify(|value| *value = 1);
        // Woken, checks again, not yet satisfied.
        assert!(poll_once(&mut wait).is_pending());
        cell.send_modify(|value| *value = 2);
        assert_eq!(poll_once(&mut wait), Poll::Ready(2));
    }

    #[test]
    fn unmodified_send_wakes_nobody() {
        let cell = StatusCell::new(0_u32);
        // Counts the checks: each wakeup runs the check once more.
        let checks = std::cell::Cell::new(0);
        let mut wait = Box::pin(cell.wait_for(|value| {
            checks.set(checks.get() + 1);
            (*value == 1).then_some(())
        }));
        assert!(poll_once(&mut wait).is_pending());
        assert_eq!(checks.get(), 1);
        // Changed behind the waiters' back: they are not woken.
        cell.send_if_modified(|value| {
            *value = 1;
            false
        });
        assert!(poll_once(&mut wait).is_pending());
        assert_eq!(checks.get(), 1);
        cell.send_if_modified(|_| true);
        assert_eq!(poll_once(&mut wait), Poll::Ready(()));
        assert_eq!(checks.get(), 2);
    }

    #[test]
    fn change_racing_the_check_is_not_lost() {
        // Another thread changes the value as soon as the first check lets go
        // of the lock, so between the check and the await (or during the
        // await): either way the waiter must see it.
        let cell = Arc::new(StatusCell::new(0_u32));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let mut started = false;
        let mut wait = Box::pin(cell.wait_for(|value| {
            if !started {
                started = true;
                let cell = Arc::clone(&cell);
                let done_tx = done_tx.clone();
                std::thread::spawn(move || {
                    cell.send_modify(|value| *value = 1);
                    done_tx.send(()).unwrap();
                });
            }
            (*value == 1).then_some(())
        }));
        let first = poll_once(&mut wait);
        // Once the change (and its wakeup) is complete, with no poll in
        // between: only the registration made before the first check can
        // have caught it.
        done_rx.recv().unwrap();
        if first.is_pending() {
            assert_eq!(poll_once(&mut wait), Poll::Ready(()));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiters_on_other_tasks_see_the_change() {
        let cell = Arc::new(StatusCell::new(0_u32));
        let (registered_tx, registered_rx) = tokio::sync::oneshot::channel();
        let waiter = {
            let cell = Arc::clone(&cell);
            tokio::spawn(async move {
                let mut registered = Some(registered_tx);
                cell.wait_for(|value| {
                    if let Some(registered) = registered.take() {
                        let _ = registered.send(());
                    }
                    (*value == 3).then_some(*value)
                })
                .await
            })
        };
        registered_rx.await.unwrap();
        cell.send_modify(|value| *value = 3);
        assert_eq!(waiter.await.unwrap(), 3);
    }
}
