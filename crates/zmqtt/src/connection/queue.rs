//! The bounded queue that carries [`Command`]s from the handles to the driver.
//!
//! tokio's `mpsc` channel allocates its shared state and a first block of 32
//! slots when it is made: about 2.8 KiB per client for `Command`, paid by
//! every connection even while it sends nothing. This queue is one small
//! allocation; its slots grow with what is queued and are given back when the
//! driver goes idle ([`CommandRx::release_memory`]).
//!
//! Same contract as the tokio channel it replaces: bounded (`try_send` says
//! `Full`, `send` waits for room), `recv` ends with `None` once every sender
//! is gone or the receiver closed, and closing answers waiting senders with
//! their command back.
//!
//! It also hands out the driver's control channel (acknowledgements of
//! messages, cancelled requests), made when a handle first needs it: its
//! receiver reaches the driver through this queue.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::sync::mpsc::error::{SendError, TrySendError};
use tokio::sync::{mpsc, oneshot, Notify};

use super::command::{Command, Control};
use crate::client::not_connected;
use crate::error::Result;

/// A queue that holds at most `capacity` commands (at least one), counting
/// the receiver's current batch: room comes back a batch at a time.
pub(crate) fn command_queue(capacity: usize) -> (CommandTx, CommandRx) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            in_batch: 0,
            senders: 1,
            closed: false,
            waiting_senders: 0,
            receiver: None,
            control: None,
        }),
        capacity: capacity.max(1),
        room: Notify::new(),
    });
    (
        CommandTx {
            shared: Arc::clone(&shared),
        },
        CommandRx {
            shared,
            batch: VecDeque::new(),
        },
    )
}

struct Shared {
    state: Mutex<State>,
    capacity: usize,
    /// Senders waiting for room; one is woken per command taken.
    room: Notify,
}

struct State {
    queue: VecDeque<Command>,
    /// Commands the receiver took in its last batch (counted against the
    /// capacity until it takes the next one).
    in_batch: usize,
    /// Live `CommandTx` handles.
    senders: usize,
    /// The receiver closed (or is gone): nothing more is accepted.
    closed: bool,
    /// Senders in `send` waiting for room.
    waiting_senders: usize,
    /// The driver, waiting for a command.
    receiver: Option<Waker>,
    /// The control channel, once made.
    control: Option<mpsc::UnboundedSender<Control>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned state is intact.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `command`; one that `bounded` is refused while the queue is
    /// full (`wait_if_full`: the caller then waits for room).
    fn push(
        &self,
        command: Command,
        bounded: bool,
        wait_if_full: bool,
    ) -> std::result::Result<(), TrySendError<Command>> {
        let receiver = {
            let mut state = self.lock();
            if state.closed {
                return Err(TrySendError::Closed(command));
            }
            if bounded && state.queue.len() + state.in_batch >= self.capacity {
                if wait_if_full {
                    state.waiting_senders += 1;
                }
                return Err(TrySendError::Full(command));
            }
            state.queue.push_back(command);
            state.receiver.take()
        };
        if let Some(receiver) = receiver {
            receiver.wake();
        }
        Ok(())
    }
}

/// The sending side; one per handle that talks to the driver.
pub(crate) struct CommandTx {
    shared: Arc<Shared>,
}

impl fmt::Debug for CommandTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandTx")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Clone for CommandTx {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        CommandTx {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Drop for CommandTx {
    fn drop(&mut self) {
        let receiver = {
            let mut state = self.shared.lock();
            state.senders = state.senders.saturating_sub(1);
            if state.senders > 0 {
                return;
            }
            state.receiver.take()
        };
        // The last sender: the driver learns that every handle is gone.
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }
}

/// Takes one off `waiting_senders` when a waiting `send` stops waiting
/// (woken or cancelled).
struct Waiting<'a>(&'a Shared);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.waiting_senders = state.waiting_senders.saturating_sub(1);
    }
}

impl CommandTx {
    /// Queues `command` unless the queue is full or closed.
    pub(crate) fn try_send(
        &self,
        command: Command,
    ) -> std::result::Result<(), TrySendError<Command>> {
        self.shared.push(command, true, false)
    }

    /// Queues `command` even when the queue is full: for the notices `Drop`
    /// impls send (bounded by the live handles that send them). False once
    /// the driver stopped.
    pub(crate) fn send_unbounded(&self, command: Command) -> bool {
        self.shared.push(command, false, false).is_ok()
    }

    /// Hands a command to the driver and waits for its answer.
    pub(crate) async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply)).await.map_err(|_| not_connected())?;
        answer.await.unwrap_or_else(|_| Err(not_connected()))
    }

    /// The sender of the driver's control channel, made on first use (its
    /// receiver is queued for the driver); `None` once the driver stopped.
    pub(crate) fn control(&self) -> Option<mpsc::UnboundedSender<Control>> {
        let (control, receiver) = {
            let mut state = self.shared.lock();
            if state.closed {
                return None;
            }
            if let Some(control) = &state.control {
                return Some(control.clone());
            }
            let (control, control_rx) = mpsc::unbounded_channel();
            state.control = Some(control.clone());
            state.queue.push_back(Command::ControlChannel(control_rx));
            (control, state.receiver.take())
        };
        if let Some(receiver) = receiver {
            receiver.wake();
        }
        Some(control)
    }

    /// Queues `command`, waiting for room. Cancel-safe: dropping the future
    /// queues nothing.
    pub(crate) async fn send(
        &self,
        command: Command,
    ) -> std::result::Result<(), SendError<Command>> {
        let mut command = command;
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            // Registered before looking, so that room made after the look
            // wakes this sender.
            room.as_mut().enable();
            match self.shared.push(command, true, true) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(back)) => return Err(SendError(back)),
                Err(TrySendError::Full(back)) => command = back,
            }
            let _waiting = Waiting(&self.shared);
            room.await;
        }
    }

    /// Whether the receiver is closed (the driver stopped).
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }
}

/// The receiving side, owned by the driver. It takes every queued command
/// at once (one lock per batch, not per command) and hands them out from
/// its own `batch`; the two buffers swap, so neither is allocated again.
pub(crate) struct CommandRx {
    shared: Arc<Shared>,
    batch: VecDeque<Command>,
}

impl fmt::Debug for CommandRx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandRx").finish_non_exhaustive()
    }
}

impl CommandRx {
    /// The next command; `None` once closed and drained, or once every
    /// sender is gone and the queue is empty.
    pub(crate) fn recv(&mut self) -> impl std::future::Future<Output = Option<Command>> + '_ {
        std::future::poll_fn(|cx| self.poll_recv(cx))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        // Like tokio's channels: a receiver that always has work still yields
        // to the scheduler now and then.
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        if let Some(command) = self.next() {
            coop.made_progress();
            return Poll::Ready(Some(command));
        }
        let mut state = self.shared.lock();
        if state.closed || state.senders == 0 {
            coop.made_progress();
            return Poll::Ready(None);
        }
        match &mut state.receiver {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// A queued command, without waiting.
    pub(crate) fn try_recv(&mut self) -> Option<Command> {
        self.next()
    }

    /// The next command of the batch; when it is used up, the queue's
    /// commands become the next batch (room for the senders, who are woken
    /// if some wait for it).
    fn next(&mut self) -> Option<Command> {
        if let Some(command) = self.batch.pop_front() {
            return Some(command);
        }
        let wake_senders = {
            let mut state = self.shared.lock();
            std::mem::swap(&mut state.queue, &mut self.batch);
            state.in_batch = self.batch.len();
            state.waiting_senders > 0
        };
        if wake_senders {
            self.shared.room.notify_waiters();
        }
        self.batch.pop_front()
    }

    /// Accepts no more commands; those already queued can still be taken.
    /// Waiting senders get theirs back.
    pub(crate) fn close(&mut self) {
        self.shared.lock().closed = true;
        self.shared.room.notify_waiters();
    }

    /// The sender of the control channel for the driver itself, with the
    /// receiver when this call made the channel (otherwise the receiver is
    /// queued, or the driver has it already).
    pub(crate) fn control(
        &self,
    ) -> (
        mpsc::UnboundedSender<Control>,
        Option<mpsc::UnboundedReceiver<Control>>,
    ) {
        let mut state = self.shared.lock();
        if let Some(control) = &state.control {
            return (control.clone(), None);
        }
        let (control, control_rx) = mpsc::unbounded_channel();
        state.control = Some(control.clone());
        (control, Some(control_rx))
    }

    /// Gives back the slots of an empty queue (allocated again on demand).
    pub(crate) fn release_memory(&mut self) {
        if self.batch.is_empty() {
            self.batch = VecDeque::new();
        }
        let mut state = self.shared.lock();
        if state.queue.is_empty() {
            state.queue = VecDeque::new();
        }
    }
}

impl Drop for CommandRx {
    fn drop(&mut self) {
        let queued = {
            let mut state = self.shared.lock();
            state.closed = true;
            std::mem::take(&mut state.queue)
        };
        self.shared.room.notify_waiters();
        // Dropped outside the lock: their answer channels tell the callers.
        drop(queued);
        self.batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    fn ping() -> (Command, oneshot::Receiver<crate::error::Result<()>>) {
        let (reply, answer) = oneshot::channel();
        (Command::Ping { reply }, answer)
    }

    fn is_ping(command: Option<Command>) -> bool {
        matches!(command, Some(Command::Ping { .. }))
    }

    #[tokio::test]
    async fn bounded_in_order_and_full_when_full() {
        let (tx, mut rx) = command_queue(2);
        let (first, mut first_answer) = ping();
        tx.try_send(first).unwrap();
        tx.try_send(ping().0).unwrap();
        assert!(matches!(tx.try_send(ping().0), Err(TrySendError::Full(_))));
        // Arrival order: the first one out is the first one in.
        match rx.recv().await {
            Some(Command::Ping { reply }) => reply.send(Ok(())).unwrap(),
            other => panic!("expected the first ping, got {other:?}"),
        }
        assert!(first_answer.try_recv().is_ok());
        // The receiver took both as one batch: room comes back once it has
        // used the batch up and looks for more.
        assert!(matches!(tx.try_send(ping().0), Err(TrySendError::Full(_))));
        assert!(is_ping(rx.try_recv()));
        assert!(rx.try_recv().is_none());
        tx.try_send(ping().0).unwrap();
        tx.try_send(ping().0).unwrap();
        assert!(is_ping(rx.try_recv()));
        assert!(is_ping(rx.try_recv()));
        assert!(rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn send_waits_for_room_and_every_waiting_sender_gets_in() {
        let (tx, mut rx) = command_queue(1);
        tx.try_send(ping().0).unwrap();
        let mut waiting = Vec::new();
        for _ in 0..3 {
            let tx = tx.clone();
            waiting.push(tokio::spawn(async move { tx.send(ping().0).await.is_ok() }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(waiting.iter().all(|task| !task.is_finished()));
        // Each batch used up (here: one command) makes room for one more.
        for _ in 0..4 {
            let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
            assert!(is_ping(next.unwrap()));
        }
        for task in waiting {
            assert!(task.await.unwrap());
        }
    }

    #[tokio::test]
    async fn a_cancelled_send_queues_nothing_and_blocks_no_one() {
        let (tx, mut rx) = command_queue(1);
        tx.try_send(ping().0).unwrap();
        let cancelled = tokio::time::timeout(Duration::from_millis(10), tx.send(ping().0)).await;
        assert!(cancelled.is_err());
        let other = tx.clone();
        let waiting = tokio::spawn(async move { other.send(ping().0).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(is_ping(rx.recv().await));
        // Looking for the next command makes the room.
        assert!(rx.try_recv().is_none());
        assert!(tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap());
        assert!(is_ping(rx.try_recv()));
        assert!(rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn recv_ends_when_every_sender_is_gone() {
        let (tx, mut rx) = command_queue(4);
        let other = tx.clone();
        tx.try_send(ping().0).unwrap();
        drop(tx);
        let ended = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (is_ping(first), second.is_none())
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!ended.is_finished(), "a sender is still alive");
        drop(other);
        assert_eq!(ended.await.unwrap(), (true, true));
    }

    #[tokio::test]
    async fn close_refuses_new_commands_keeps_queued_ones_and_frees_waiters() {
        let (tx, mut rx) = command_queue(1);
        tx.try_send(ping().0).unwrap();
        let other = tx.clone();
        let waiting = tokio::spawn(async move { other.send(ping().0).await.is_err() });
        tokio::time::sleep(Duration::from_millis(10)).await;
        rx.close();
        assert!(tx.is_closed());
        assert!(
            waiting.await.unwrap(),
            "the waiting sender got its command back"
        );
        assert!(matches!(
            tx.try_send(ping().0),
            Err(TrySendError::Closed(_))
        ));
        assert!(is_ping(rx.recv().await));
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn dropping_the_receiver_answers_queued_callers() {
        let (tx, rx) = command_queue(4);
        let (command, answer) = ping();
        tx.try_send(command).unwrap();
        drop(rx);
        assert!(answer.await.is_err(), "the queued command was dropped");
        assert!(tx.is_closed());
    }

    #[test]
    fn release_memory_keeps_queued_commands() {
        let (tx, mut rx) = command_queue(4);
        tx.try_send(ping().0).unwrap();
        rx.release_memory();
        assert!(is_ping(rx.try_recv()));
        rx.release_memory();
        assert!(rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn the_control_channel_is_made_once_on_first_use() {
        let (tx, mut rx) = command_queue(1);
        tx.try_send(ping().0).unwrap();
        // Made by a handle: its receiver is queued for the driver, past the
        // bound and behind what was queued before.
        let control = tx.control().unwrap();
        assert!(is_ping(rx.try_recv()));
        let Some(Command::ControlChannel(mut control_rx)) = rx.try_recv() else {
            panic!("expected the control channel's receiver");
        };
        // Every later user gets the same channel, the driver included.
        let again = tx.control().unwrap();
        assert!(rx.try_recv().is_none());
        let (mine, none) = rx.control();
        assert!(none.is_none());
        for sender in [control, again, mine] {
            sender
                .send(Control::CancelRequest((String::new(), bytes::Bytes::new())))
                .unwrap();
        }
        for _ in 0..3 {
            assert!(matches!(
                control_rx.try_recv(),
                Ok(Control::CancelRequest(_))
            ));
        }
        rx.close();
        assert!(tx.control().is_none(), "not once the driver stopped");
    }

    #[tokio::test]
    async fn the_driver_may_make_the_control_channel_itself() {
        let (tx, mut rx) = command_queue(1);
        let (mine, control_rx) = rx.control();
        let mut control_rx = control_rx.expect("made by this call");
        let theirs = tx.control().unwrap();
        assert!(rx.try_recv().is_none(), "the driver holds the receiver");
        theirs
            .send(Control::CancelRequest((String::new(), bytes::Bytes::new())))
            .unwrap();
        drop(mine);
        assert!(control_rx.recv().await.is_some());
    }

    #[test]
    fn notices_pass_a_full_queue() {
        let (tx, mut rx) = command_queue(1);
        tx.try_send(ping().0).unwrap();
        assert!(tx.send_unbounded(Command::Detach(7)));
        assert!(is_ping(rx.try_recv()));
        assert!(matches!(rx.try_recv(), Some(Command::Detach(7))));
        rx.close();
        assert!(!tx.send_unbounded(Command::Detach(8)));
    }
}
