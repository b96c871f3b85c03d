//! `NativeSubscription`: one subscription, its SUBSCRIBE options and its
//! bounded queue of delivered messages.
//!
//! The Rust [`zmqtt::Subscription`] lives behind a mutex from `start()` on.
//! `try_recv_batch` takes from it synchronously on the loop's thread. `wait()`
//! resolves once a message is queued without handing it out: a waiter that
//! finds one moves it into `stash` (served first by `try_recv_batch`), so a
//! cancelled wait loses nothing. Several waiters may wait: the mpsc queue
//! wakes only the last that polled it, so whoever sees a change (a message,
//! the end, a start) wakes the others through `notify`, and a waiter that is
//! dropped does too (it may have been the one the queue would have woken).
//!
//! Nothing here takes the GIL while holding the mutex, and the loop's thread
//! holds the mutex only briefly: no deadlock with tokio threads.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use tokio::sync::Notify;
use zmqtt::{Error, QoS, RetainHandling};

use crate::bridge;
use crate::client::AnyClient;
use crate::convert;
use crate::errors;
use crate::message::Message;

/// What `subscribe()` asked for.
#[derive(Clone, Debug)]
pub(crate) struct SubscribeSpec {
    pub filters: Vec<String>,
    pub qos: QoS,
    pub auto_ack: bool,
    pub receive_buffer_size: usize,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
    pub subscription_identifier: Option<u32>,
}

enum Phase {
    New,
    Starting,
    Active(zmqtt::Subscription),
    /// Ended: cleanly (`None`) or by the error that stopped the client.
    Ended(Option<Arc<Error>>),
}

/// The SUBSCRIBE in flight (until SUBACK). Kept here rather than inside the
/// task of `start()`, so that `stop()` / `detach()` drop it synchronously:
/// the client then forgets the subscription before any later command.
type Starting = Pin<Box<dyn Future<Output = zmqtt::Result<zmqtt::Subscription>> + Send>>;

struct State {
    phase: Phase,
    /// Messages taken from the queue by a waiter, served first.
    stash: VecDeque<zmqtt::Message>,
    starting: Option<Starting>,
}

struct Shared {
    state: Mutex<State>,
    notify: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One subscription of a `NativeClient`: its SUBSCRIBE options and its
/// bounded queue of delivered messages.
#[pyclass(frozen, module = "zmqtt._zmqtt")]
pub struct NativeSubscription {
    client: AnyClient,
    spec: SubscribeSpec,
    shared: Arc<Shared>,
}

impl NativeSubscription {
    pub(crate) fn new(client: AnyClient, spec: SubscribeSpec) -> NativeSubscription {
        NativeSubscription {
            client,
            spec,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    phase: Phase::New,
                    stash: VecDeque::new(),
                    starting: None,
                }),
                notify: Notify::new(),
            }),
        }
    }

    /// Ends local delivery; returns the Rust subscription if it was active.
    /// A SUBSCRIBE still in flight is abandoned (the client unsubscribes what
    /// the broker grants it).
    fn end_locally(&self) -> Option<zmqtt::Subscription> {
        let (taken, abandoned) = {
            let mut state = self.shared.lock();
            state.stash.clear();
            let abandoned = state.starting.take();
            match std::mem::replace(&mut state.phase, Phase::Ended(None)) {
                Phase::Active(subscription) => (Some(subscription), abandoned),
                Phase::New | Phase::Starting | Phase::Ended(_) => (None, abandoned),
            }
        };
        drop(abandoned);
        self.shared.notify.notify_waiters();
        taken
    }
}

/// Sets a subscription that is still starting to ended when its start is
/// abandoned (the `start()` future cancelled).
struct StartGuard {
    shared: Arc<Shared>,
    armed: bool,
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let abandoned = {
            let mut state = self.shared.lock();
            if matches!(state.phase, Phase::Starting) {
                state.phase = Phase::Ended(None);
            }
            state.starting.take()
        };
        drop(abandoned);
        self.shared.notify.notify_waiters();
    }
}

/// Wakes the other waiters when a waiter is dropped before it finished: the
/// queue may have had its waker only.
struct WaitGuard {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.notify.notify_waiters();
        }
    }
}

async fn subscribe(client: AnyClient, spec: SubscribeSpec) -> zmqtt::Result<zmqtt::Subscription> {
    match &client {
        AnyClient::V311(client) => {
            client
                .subscribe(spec.filters.iter().map(String::as_str))
                .qos(spec.qos)
                .auto_ack(spec.auto_ack)
                .receive_buffer_size(spec.receive_buffer_size)
                .await
        }
        AnyClient::V5(client) => {
            let mut builder = client
                .subscribe(spec.filters.iter().map(String::as_str))
                .qos(spec.qos)
                .auto_ack(spec.auto_ack)
                .receive_buffer_size(spec.receive_buffer_size)
                .no_local(spec.no_local)
                .retain_as_published(spec.retain_as_published)
                .retain_handling(spec.retain_handling);
            if let Some(identifier) = spec.subscription_identifier {
                builder = builder.subscription_identifier(identifier);
            }
            builder.await
        }
    }
}

/// Waits until a message is stashed or the subscription has ended.
async fn wait_for_message(shared: Arc<Shared>) {
    let mut guard = WaitGuard {
        shared: Arc::clone(&shared),
        finished: false,
    };
    loop {
        let mut notified = pin!(shared.notify.notified());
        notified.as_mut().enable();
        let settled = poll_fn(|cx| {
            let mut state = shared.lock();
            if !state.stash.is_empty() {
                return Poll::Ready(true);
            }
            let polled = match &mut state.phase {
                Phase::Ended(_) => return Poll::Ready(true),
                Phase::New | Phase::Starting => Poll::Pending,
                Phase::Active(subscription) => poll_next(subscription, cx),
            };
            match polled {
                Poll::Ready(Some(message)) => {
                    state.stash.push_back(message);
                    drop(state);
                    shared.notify.notify_waiters();
                    Poll::Ready(true)
                }
                Poll::Ready(None) => {
                    let error = match &state.phase {
                        Phase::Active(subscription) => subscription.error().map(Arc::new),
                        _ => None,
                    };
                    state.phase = Phase::Ended(error);
                    drop(state);
                    shared.notify.notify_waiters();
                    Poll::Ready(true)
                }
                // Woken by the queue or by a change another party announces.
                Poll::Pending => {
                    drop(state);
                    notified.as_mut().poll(cx).map(|()| false)
                }
            }
        })
        .await;
        if settled {
            break;
        }
    }
    guard.finished = true;
}

#[pymethods]
impl NativeSubscription {
    /// Sends SUBSCRIBE and resolves on SUBACK.
    fn start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        {
            let mut state = self.shared.lock();
            if !matches!(state.phase, Phase::New) {
                return Err(PyRuntimeError::new_err(
                    "this subscription was already started (make a new one to start again)",
                ));
            }
            state.phase = Phase::Starting;
            state.starting = Some(Box::pin(subscribe(self.client.clone(), self.spec.clone())));
        }
        let shared = Arc::clone(&self.shared);
        let starting = async move {
            let mut guard = StartGuard {
                shared: Arc::clone(&shared),
                armed: true,
            };
            let outcome = poll_fn(|cx| {
                let mut state = shared.lock();
                // Abandoned by stop() or detach().
                let Some(starting) = state.starting.as_mut() else {
                    return Poll::Ready(Ok(()));
                };
                let Poll::Ready(result) = starting.as_mut().poll(cx) else {
                    return Poll::Pending;
                };
                state.starting = None;
                Poll::Ready(match result {
                    Ok(subscription) => {
                        state.phase = Phase::Active(subscription);
                        Ok(())
                    }
                    Err(error) => {
                        state.phase = Phase::Ended(None);
                        Err(error)
                    }
                })
            })
            .await;
            guard.armed = false;
            shared.notify.notify_waiters();
            outcome
        };
        bridge::future(py, starting, |py, outcome| match outcome {
            Ok(()) => Ok(py.None()),
            Err(error) => Err(errors::to_pyerr(py, &error)),
        })
    }

    /// Ends local delivery at once and sends UNSUBSCRIBE when started and
    /// connected; resolves with the `UnsubscribeResult` or `None`. Never raises.
    fn stop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let Some(subscription) = self.end_locally() else {
            return bridge::ready(py, Ok(py.None()));
        };
        let filters = self.spec.filters.clone();
        let stopping = async move {
            match subscription.stop().await {
                Ok(result) => Ok(Some(result)),
                Err(error) => {
                    log::warn!(
                        target: "zmqtt::client",
                        "unsubscribing {filters:?} failed; stopped locally: {error}"
                    );
                    Ok(None)
                }
            }
        };
        if self.client.is_v5() {
            bridge::future(py, stopping, unsubscribed_v5)
        } else {
            bridge::future(py, stopping, unsubscribed_v311)
        }
    }

    /// Ends local delivery at once without UNSUBSCRIBE. Idempotent.
    fn detach(&self) {
        // Dropping the Rust subscription detaches it.
        drop(self.end_locally());
    }

    /// Takes up to `max_messages` queued messages without waiting; `[]` when
    /// none is queued and the subscription is live; `None` (or the error that
    /// stopped the client) once it has ended and is drained.
    fn try_recv_batch<'py>(
        &self,
        py: Python<'py>,
        max_messages: usize,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        if max_messages == 0 {
            return Err(PyValueError::new_err("max_messages must be at least 1"));
        }
        let mut taken: Vec<zmqtt::Message> = Vec::new();
        let mut ended_now = false;
        let ended = {
            let mut state = self.shared.lock();
            while taken.len() < max_messages {
                match state.stash.pop_front() {
                    Some(message) => taken.push(message),
                    None => break,
                }
            }
            if let Phase::Active(subscription) = &mut state.phase {
                while taken.len() < max_messages {
                    match subscription.try_recv() {
                        Some(message) => taken.push(message),
                        None => break,
                    }
                }
                if taken.is_empty() && subscription.is_finished() {
                    let error = subscription.error().map(Arc::new);
                    state.phase = Phase::Ended(error);
                    ended_now = true;
                }
            }
            match (&state.phase, taken.is_empty()) {
                (Phase::Ended(error), true) => Some(error.clone()),
                _ => None,
            }
        };
        if ended_now {
            self.shared.notify.notify_waiters();
        }
        if let Some(error) = ended {
            return match error {
                None => Ok(None),
                Some(error) => Err(errors::to_pyerr(py, &error)),
            };
        }
        let routed_by = self.spec.subscription_identifier;
        let messages = taken
            .into_iter()
            .map(|message| Message::received(message, routed_by));
        let list = PyList::empty(py);
        for message in messages {
            list.append(Bound::new(py, message)?)?;
        }
        Ok(Some(list))
    }

    /// Resolves as soon as a message is queued or the subscription has ended.
    /// Takes nothing; never raises.
    fn wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let shared = Arc::clone(&self.shared);
        bridge::future(
            py,
            async move {
                wait_for_message(shared).await;
                Ok(())
            },
            |py, _| Ok(py.None()),
        )
    }

    fn __repr__(&self) -> String {
        let phase = match self.shared.lock().phase {
            Phase::New => "new",
            Phase::Starting => "starting",
            Phase::Active(_) => "active",
            Phase::Ended(_) => "ended",
        };
        format!("<NativeSubscription {:?} {phase}>", self.spec.filters)
    }
}

fn unsubscribed_v5(
    py: Python<'_>,
    outcome: zmqtt::Result<Option<zmqtt::UnsubscribeResult>>,
) -> PyResult<Py<PyAny>> {
    unsubscribed(py, outcome, true)
}

fn unsubscribed_v311(
    py: Python<'_>,
    outcome: zmqtt::Result<Option<zmqtt::UnsubscribeResult>>,
) -> PyResult<Py<PyAny>> {
    unsubscribed(py, outcome, false)
}

fn unsubscribed(
    py: Python<'_>,
    outcome: zmqtt::Result<Option<zmqtt::UnsubscribeResult>>,
    v5: bool,
) -> PyResult<Py<PyAny>> {
    match outcome {
        Ok(Some(result)) => convert::unsubscribe_result(py, &result, v5),
        _ => Ok(py.None()),
    }
}

/// Polls the subscription's queue once (registering `cx`'s waker).
fn poll_next(
    subscription: &mut zmqtt::Subscription,
    cx: &mut Context<'_>,
) -> Poll<Option<zmqtt::Message>> {
    pin!(subscription.recv()).poll(cx)
}
