//! The store thread's queue: a std channel (the thread waits on it with a timeout for its
//! commit timer, which tokio's channels cannot do from a plain thread) with a hard bound kept
//! by a counter of queued jobs.
//!
//! Sending never blocks: the live task runs on the async runtime, and a full queue must not
//! stall its timers and gossip. Past [`MAX_QUEUED`] jobs a send is refused
//! ([`SendError::Full`]) and the caller answers the job's requester with a store error. The
//! senders' own bounds (`Live`'s admission and store budgets, `API_JOBS` permits) keep the
//! queue far below that in normal operation; the bound is the backstop.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    mpsc::{self, RecvError, RecvTimeoutError},
    Arc,
};
use std::time::Duration;

/// Most jobs queued for the store thread at once.
pub(crate) const MAX_QUEUED: usize = 1 << 16;

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendError {
    /// [`MAX_QUEUED`] jobs are waiting.
    Full,
    /// The store thread is gone.
    Closed,
}

/// The sending side (cheap to clone).
pub(crate) struct JobTx<T> {
    tx: mpsc::Sender<T>,
    queued: Arc<AtomicUsize>,
    cap: usize,
}

impl<T> std::fmt::Debug for JobTx<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobTx")
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .field("cap", &self.cap)
            .finish()
    }
}

impl<T> Clone for JobTx<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            queued: self.queued.clone(),
            cap: self.cap,
        }
    }
}

/// The receiving side, on the store thread.
pub(crate) struct JobRx<T> {
    rx: mpsc::Receiver<T>,
    queued: Arc<AtomicUsize>,
}

/// A queue of at most `cap` jobs.
pub(crate) fn job_queue<T>(cap: usize) -> (JobTx<T>, JobRx<T>) {
    // Bounded by the counter, not by the channel: `JobTx::send` refuses a job once `cap` are
    // queued, without blocking (senders run on the async runtime). Not `sync_channel(cap)`
    // with `try_send`: std's bounded channel is an array that allocates all `cap` slots
    // (65,536 jobs) up front, whatever the queue holds.
    let (tx, rx) = mpsc::channel(); // unbounded by design: `queued` bounds it (above)
    let queued = Arc::new(AtomicUsize::new(0));
    (
        JobTx {
            tx,
            queued: queued.clone(),
            cap,
        },
        JobRx { rx, queued },
    )
}

impl<T> JobTx<T> {
    /// Queues `job`, or refuses it when `cap` jobs wait or the receiver is gone.
    pub(crate) fn send(&self, job: T) -> Result<(), SendError> {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.cap {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(SendError::Full);
        }
        self.tx.send(job).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            SendError::Closed
        })
    }
}

impl<T> JobRx<T> {
    fn took(&self, job: T) -> T {
        self.queued.fetch_sub(1, Ordering::AcqRel);
        job
    }

    /// The next job, waiting at most `wait`.
    pub(crate) fn recv_timeout(&self, wait: Duration) -> Result<T, RecvTimeoutError> {
        self.rx.recv_timeout(wait).map(|j| self.took(j))
    }

    /// The next job.
    pub(crate) fn recv(&self) -> Result<T, RecvError> {
        self.rx.recv().map(|j| self.took(j))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_until_a_job_is_taken() {
        let (tx, rx) = job_queue::<u32>(2);
        assert_eq!(tx.send(1), Ok(()));
        assert_eq!(tx.clone().send(2), Ok(()));
        assert_eq!(tx.send(3), Err(SendError::Full));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(tx.send(3), Ok(()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(2));
        assert_eq!(rx.recv(), Ok(3));
        drop(rx);
        assert_eq!(tx.send(4), Err(SendError::Closed));
        assert_eq!(
            tx.send(5),
            Err(SendError::Closed),
            "a refused job is not counted"
        );
    }
}
