//! The sockets open on this instance, by id, user and room, and delivery to them.
//!
//! Delivery never waits: each socket has a bounded queue of frames
//! (`realtime.send_queue`), filled with `try_send`. A socket whose queue is full is
//! closed as too slow, so one client that stops reading costs at most its queue and
//! the others keep receiving.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::metrics;
use super::protocol::CloseCode;

/// One serialized server frame, shared (not copied) by every socket it goes to.
pub(super) type Frame = bytestring::ByteString;

/// Closes one socket, with the reason set by whoever decided first.
#[derive(Default)]
pub(super) struct Closer {
    token: CancellationToken,
    code: OnceLock<CloseCode>,
}

impl Closer {
    pub(super) fn close(&self, code: CloseCode) {
        let _ = self.code.set(code);
        self.token.cancel();
    }

    /// Completes once [`Closer::close`] was called; gives its code.
    pub(super) async fn closed(&self) -> CloseCode {
        self.token.cancelled().await;
        self.code.get().copied().unwrap_or(CloseCode::GoingAway)
    }

    /// [`Closer::closed`] as one future to poll for the socket's whole life: made
    /// once, not at every turn of its loop (each made anew registers a waiter).
    pub(super) fn watch(self: &Arc<Self>) -> Watch {
        let closer = self.clone();
        Box::pin(async move { closer.closed().await })
    }
}

/// What [`Closer::watch`] returns.
pub(super) type Watch = std::pin::Pin<Box<dyn std::future::Future<Output = CloseCode> + Send>>;

struct Socket {
    user_id: i64,
    session_id: String,
    frames: mpsc::Sender<Frame>,
    closer: Arc<Closer>,
    rooms: HashSet<String>,
}

#[derive(Default)]
struct State {
    sockets: HashMap<u64, Socket>,
    by_user: HashMap<i64, Vec<u64>>,
    rooms: HashMap<String, HashSet<u64>>,
}

/// Why a socket was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// `realtime.max_connections` reached.
    InstanceFull,
    /// `realtime.max_connections_per_user` reached for this user.
    UserFull,
}

/// A registered socket's side: its id, its frames, its closer.
pub(super) struct Registration {
    pub(super) id: u64,
    pub(super) frames: mpsc::Receiver<Frame>,
    pub(super) closer: Arc<Closer>,
}

/// The limits the hub enforces.
#[derive(Debug, Clone, Copy)]
pub(super) struct HubLimits {
    pub(super) max_connections: usize,
    pub(super) max_per_user: usize,
    pub(super) max_rooms: usize,
    pub(super) send_queue: usize,
}

/// This instance's sockets.
pub(super) struct Hub {
    state: RwLock<State>,
    next_id: AtomicU64,
    limits: HubLimits,
}

impl Hub {
    pub(super) fn new(limits: HubLimits) -> Self {
        Hub {
            state: RwLock::default(),
            next_id: AtomicU64::new(1),
            limits,
        }
    }

    // Every change is a few map updates that cannot panic halfway.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a socket for `user_id`'s session, within the limits.
    pub(super) fn register(&self, user_id: i64, session_id: &str) -> Result<Registration, Refusal> {
        let mut state = self.write();
        if state.sockets.len() >= self.limits.max_connections {
            return Err(Refusal::InstanceFull);
        }
        let mine = state.by_user.entry(user_id).or_default();
        if mine.len() >= self.limits.max_per_user {
            return Err(Refusal::UserFull);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        mine.push(id);
        let (tx, frames) = mpsc::channel(self.limits.send_queue);
        let closer = Arc::new(Closer::default());
        state.sockets.insert(
            id,
            Socket {
                user_id,
                session_id: session_id.to_owned(),
                frames: tx,
                closer: closer.clone(),
                rooms: HashSet::new(),
            },
        );
        metrics::connections().set(state.sockets.len() as i64);
        Ok(Registration { id, frames, closer })
    }

    /// Forgets a closed socket and its rooms.
    pub(super) fn unregister(&self, id: u64) {
        let mut state = self.write();
        let Some(socket) = state.sockets.remove(&id) else {
            return;
        };
        if let Some(ids) = state.by_user.get_mut(&socket.user_id) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                state.by_user.remove(&socket.user_id);
            }
        }
        for room in &socket.rooms {
            leave_room(&mut state.rooms, room, id);
        }
        metrics::connections().set(state.sockets.len() as i64);
    }

    /// Adds the socket to `room`; `Ok(false)` if it was in already, `Err` when it is
    /// in `realtime.max_rooms_per_connection` rooms.
    pub(super) fn join(&self, id: u64, room: &str) -> Result<bool, ()> {
        let mut state = self.write();
        let Some(socket) = state.sockets.get_mut(&id) else {
            return Ok(false);
        };
        if socket.rooms.contains(room) {
            return Ok(false);
        }
        if socket.rooms.len() >= self.limits.max_rooms {
            return Err(());
        }
        socket.rooms.insert(room.to_owned());
        state.rooms.entry(room.to_owned()).or_default().insert(id);
        Ok(true)
    }

    /// Takes the socket out of `room`; whether it was in.
    pub(super) fn leave(&self, id: u64, room: &str) -> bool {
        let mut state = self.write();
        let was_in = state
            .sockets
            .get_mut(&id)
            .is_some_and(|socket| socket.rooms.remove(room));
        if was_in {
            leave_room(&mut state.rooms, room, id);
        }
        was_in
    }

    /// Whether the socket is in `room`.
    pub(super) fn is_member(&self, id: u64, room: &str) -> bool {
        self.read()
            .sockets
            .get(&id)
            .is_some_and(|socket| socket.rooms.contains(room))
    }

    /// Queues `frame` for each of the user's sockets here; how many took it.
    pub(super) fn to_user(&self, user_id: i64, frame: &Frame) -> usize {
        let state = self.read();
        let ids = state
            .by_user
            .get(&user_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        ids.iter()
            .filter_map(|id| state.sockets.get(id))
            .filter(|socket| deliver(socket, frame))
            .count()
    }

    /// Queues `frame` for each socket here in `room`; how many took it.
    pub(super) fn to_room(&self, room: &str, frame: &Frame) -> usize {
        let state = self.read();
        let Some(ids) = state.rooms.get(room) else {
            return 0;
        };
        ids.iter()
            .filter_map(|id| state.sockets.get(id))
            .filter(|socket| deliver(socket, frame))
            .count()
    }

    /// Closes the user's sockets of `session_id` (all of them for `None`) with
    /// [`CloseCode::SessionEnded`]; how many.
    pub(super) fn end_sessions(&self, user_id: i64, session_id: Option<&str>) -> usize {
        let state = self.read();
        let ids = state
            .by_user
            .get(&user_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut closed = 0;
        for socket in ids.iter().filter_map(|id| state.sockets.get(id)) {
            if session_id.is_none_or(|sid| sid == socket.session_id) {
                socket.closer.close(CloseCode::SessionEnded);
                closed += 1;
            }
        }
        closed
    }

    /// Closes every socket with `code`.
    pub(super) fn close_all(&self, code: CloseCode) -> usize {
        let state = self.read();
        for socket in state.sockets.values() {
            socket.closer.close(code);
        }
        state.sockets.len()
    }

    /// Open sockets.
    pub(super) fn len(&self) -> usize {
        self.read().sockets.len()
    }
}

fn leave_room(rooms: &mut HashMap<String, HashSet<u64>>, room: &str, id: u64) {
    if let Some(members) = rooms.get_mut(room) {
        members.remove(&id);
        if members.is_empty() {
            rooms.remove(room);
        }
    }
}

/// Queues a frame without waiting; a full queue closes the socket as too slow.
fn deliver(socket: &Socket, frame: &Frame) -> bool {
    match socket.frames.try_send(frame.clone()) {
        Ok(()) => {
            metrics::messages_out().inc();
            true
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            socket.closer.close(CloseCode::TooSlow);
            metrics::dropped(CloseCode::TooSlow.reason()).inc();
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(send_queue: usize) -> Hub {
        Hub::new(HubLimits {
            max_connections: 3,
            max_per_user: 2,
            max_rooms: 2,
            send_queue,
        })
    }

    #[test]
    fn limits_per_user_and_instance_hold_and_free_up() {
        let hub = hub(4);
        let a = hub.register(1, "s").unwrap();
        let _b = hub.register(1, "s").unwrap();
        assert_eq!(hub.register(1, "s").err(), Some(Refusal::UserFull));
        let _c = hub.register(2, "t").unwrap();
        assert_eq!(hub.register(3, "u").err(), Some(Refusal::InstanceFull));
        hub.unregister(a.id);
        assert!(
            hub.register(1, "s").is_ok(),
            "a closed socket frees its place"
        );
    }

    #[test]
    fn rooms_are_bounded_and_left_with_the_socket() {
        let hub = hub(4);
        let a = hub.register(1, "s").unwrap();
        assert_eq!(hub.join(a.id, "r1"), Ok(true));
        assert_eq!(hub.join(a.id, "r1"), Ok(false));
        assert_eq!(hub.join(a.id, "r2"), Ok(true));
        assert_eq!(hub.join(a.id, "r3"), Err(()));
        assert!(hub.leave(a.id, "r2"));
        assert!(!hub.is_member(a.id, "r2"));
        let frame: Frame = "x".into();
        assert_eq!(hub.to_room("r1", &frame), 1);
        hub.unregister(a.id);
        assert_eq!(hub.to_room("r1", &frame), 0);
        assert!(hub.read().rooms.is_empty(), "no empty room is kept");
    }

    #[tokio::test]
    async fn a_full_queue_closes_only_that_socket() {
        let hub = hub(2);
        let slow = hub.register(1, "s").unwrap();
        let mut fast = hub.register(2, "t").unwrap();
        for room_of in [&slow, &fast] {
            hub.join(room_of.id, "room").unwrap();
        }
        let frame: Frame = "x".into();
        for _ in 0..2 {
            assert_eq!(hub.to_room("room", &frame), 2);
            fast.frames.recv().await.unwrap();
        }
        assert_eq!(
            hub.to_room("room", &frame),
            1,
            "the slow socket's queue is full"
        );
        assert_eq!(slow.closer.closed().await, CloseCode::TooSlow);
        assert!(!fast.closer.token.is_cancelled());
    }

    #[tokio::test]
    async fn ending_a_session_closes_its_sockets_only() {
        let hub = hub(2);
        let a = hub.register(1, "s1").unwrap();
        let b = hub.register(1, "s2").unwrap();
        assert_eq!(hub.end_sessions(1, Some("s1")), 1);
        assert_eq!(a.closer.closed().await, CloseCode::SessionEnded);
        assert!(!b.closer.token.is_cancelled());
        assert_eq!(hub.end_sessions(1, None), 2);
        assert_eq!(b.closer.closed().await, CloseCode::SessionEnded);
    }
}
