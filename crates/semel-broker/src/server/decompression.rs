//! The threads that check compressed batches: `decompression_threads` OS threads of their own,
//! fed through a queue that at most that many jobs wait in (a permit is taken before a job is
//! queued, so queueing never blocks an async worker).
//!
//! Why not tokio's blocking pool: glibc gives every thread that allocates an arena of its own
//! and keeps memory freed there resident. Decompression buffers moved across the blocking
//! pool's many threads, and each kept tens of MiB after the batch was done (the soak in
//! `scripts/abuse.sh` measured 8-10 arenas of about 32 MiB held, with kilobytes in use). On
//! threads of their own, decompression's memory stays in `decompression_threads` arenas.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Semaphore};

type Job = Box<dyn FnOnce() + Send>;

/// The pool. Its threads end when it is dropped.
#[derive(Debug)]
pub(crate) struct DecompressionPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    permits: Arc<Semaphore>,
}

impl DecompressionPool {
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new().name(format!("semel-decompress-{n}")).spawn(move || loop {
                let job = match queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv() {
                    Ok(job) => job,
                    Err(_) => return, // the pool is gone
                };
                // A panicking job drops its answer channel (its caller sees an error); the
                // thread stays.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            })?;
        }
        Ok(Self { jobs: Mutex::new(jobs), permits: Arc::new(Semaphore::new(threads)) })
    }

    /// Runs `work` on one of the pool's threads, waiting for a free one; `None` if it panicked.
    pub(crate) async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok()?;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(work());
            drop(permit);
        });
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).send(job).ok()?;
        answered.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pools_threads_and_a_panic_is_an_error() {
        let pool = DecompressionPool::new(2).expect("pool");
        let name = pool.run(|| std::thread::current().name().map(str::to_string)).await.expect("ran");
        assert!(name.expect("named").starts_with("semel-decompress-"));
        assert_eq!(pool.run(|| -> u8 { panic!("boom") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7), "the threads survive a panicking job");
    }
}
