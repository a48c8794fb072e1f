//! The broker-wide budget for bytes the network side holds: request frames being received and
//! handled, and Fetch responses waiting to be written (`max_buffered_bytes`).
//!
//! Kafka's `queued.max.request.bytes` memory pool is the model: a connection reserves memory
//! before it reads a frame's bytes, and while the pool is used up it stops reading (the client
//! is pushed back through TCP). Like Kafka's pool it is not fair: a small request may pass a large
//! one that waits, so many small clients are not held behind one large frame.
//!
//! A [`Reservation`] gives its bytes back when dropped. Who holds one, and until when:
//! - the reader, for a request frame, before its buffer grows (to at most twice what has
//!   arrived, so a client that claims a large frame and stalls holds about what it sent, not
//!   what it claimed), until the request's answer is known (the handler's deferred part has
//!   finished);
//! - a Fetch, for its response, from just before it reads the logs until the response has
//!   been written to the socket.
//!
//! Nothing waits for the pool while holding a reservation that only a later request of the
//! same connection could free. Frames being received may wait while holding part of their
//! frame, but every frame has a deadline from its first byte (`request_receive_timeout_ms`),
//! so waiting cannot deadlock: reservations are freed by handlers finishing, by clients
//! reading, and by stalled frames being closed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// The pool. Cheap to share (`Arc`).
#[derive(Debug)]
pub(crate) struct MemoryPool {
    capacity: usize,
    used: AtomicUsize,
    freed: Notify,
}

impl MemoryPool {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self { capacity, used: AtomicUsize::new(0), freed: Notify::new() })
    }

    /// Bytes reserved now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// A reservation of nothing, to grow with [`Reservation::absorb`].
    pub(crate) fn empty(self: &Arc<Self>) -> Reservation {
        Reservation { pool: Arc::clone(self), bytes: 0 }
    }

    /// Reserves `bytes` (at most the capacity), waiting while they are not free.
    pub(crate) async fn reserve(self: &Arc<Self>, bytes: usize) -> Reservation {
        let bytes = bytes.min(self.capacity);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release between the check and the wait wakes us.
            freed.as_mut().enable();
            if let Some(reservation) = self.try_reserve(bytes) {
                return reservation;
            }
            freed.await;
        }
    }

    /// Reserves `bytes` if they are free now.
    pub(crate) fn try_reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            if used.checked_add(bytes)? > self.capacity {
                return None;
            }
            match self.used.compare_exchange_weak(used, used + bytes, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(Reservation { pool: Arc::clone(self), bytes }),
                Err(now) => used = now,
            }
        }
    }

    fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
            self.freed.notify_waiters();
        }
    }
}

/// Bytes of the pool held until dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    pool: Arc<MemoryPool>,
    bytes: usize,
}

impl Reservation {
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes `other`'s bytes into this reservation.
    pub(crate) fn absorb(&mut self, mut other: Reservation) {
        self.bytes += std::mem::take(&mut other.bytes);
    }

    /// Makes the reservation `bytes` long: gives back what is no longer needed, or accounts for
    /// memory already allocated beyond it (a Fetch's one batch larger than its budget). Growing
    /// may take the pool past its capacity for as long as this is held; later reservations
    /// wait until it is back under.
    pub(crate) fn resize(&mut self, bytes: usize) {
        if bytes < self.bytes {
            self.pool.release(self.bytes - bytes);
        } else {
            self.pool.used.fetch_add(bytes - self.bytes, Ordering::AcqRel);
        }
        self.bytes = bytes;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn reservations_wait_until_bytes_are_given_back() {
        let pool = MemoryPool::new(100);
        let a = pool.reserve(60).await;
        assert!(pool.try_reserve(50).is_none(), "60 + 50 is over 100");
        let small = pool.try_reserve(40).expect("60 + 40 fits");
        assert_eq!(pool.used(), 100);
        let waiting = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.reserve(50).await.bytes() }
        });
        // The waiter cannot finish while 100 bytes are held; once `a` goes, it gets its 50.
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(a);
        let got = tokio::time::timeout(Duration::from_secs(60), waiting).await.expect("woken").expect("task");
        assert_eq!(got, 50);
        drop(small);
        assert_eq!(pool.used(), 0);
    }

    #[tokio::test]
    async fn resize_gives_back_and_accounts_for_overshoot() {
        let pool = MemoryPool::new(100);
        let mut r = pool.reserve(80).await;
        r.resize(10);
        assert_eq!(pool.used(), 10);
        r.resize(150);
        assert_eq!(pool.used(), 150);
        assert!(pool.try_reserve(1).is_none(), "over capacity until the overshoot is dropped");
        drop(r);
        assert_eq!(pool.used(), 0);
        assert_eq!(pool.reserve(1000).await.bytes(), 100, "a reservation is at most the capacity");
    }
}
