//! Instance slots: at most `slots` instances run at once, each on its own OS thread (so an
//! instance's CPU time is its thread's and a busy instance never stalls the HTTP runtime), behind
//! a bounded queue. Admission is decided at once: a slot or a queue place, or a refusal.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::Metrics;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Slots {
    admission: Arc<Semaphore>,
    tx: crossbeam_channel::Sender<Job>,
    count: usize,
    metrics: Arc<Metrics>,
    /// Recent instance run time (f64 seconds as bits), for Retry-After.
    recent_run: Arc<AtomicU64>,
}

/// A place in the slots or the queue.
pub struct Admission {
    place: Place,
    at: Instant,
}

/// A handle on an admitted request's place: the place is freed when the first handle is dropped,
/// which is the end of its response's body or of its instance, whichever comes first (an
/// instance still tearing down must not hold the place the client's next request needs).
pub struct Place(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl Drop for Place {
    fn drop(&mut self) {
        if let Ok(mut p) = self.0.lock() {
            p.take();
        }
    }
}

impl Admission {
    /// Another handle on this admission's place.
    pub fn place(&self) -> Place {
        Place(self.place.0.clone())
    }
}

impl Slots {
    pub fn start(count: usize, queue_depth: usize, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..count {
            let rx = rx.clone();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            std::thread::Builder::new().name(format!("stt-slot-{i}")).spawn(move || {
                while let Ok(job) = rx.recv() {
                    // A panic in host code must not take the slot with it; the request's
                    // response channel is dropped, which its handler answers with a 500.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(job)))
                        .is_err()
                    {
                        tracing::error!(slot = i, "an instance's host task panicked");
                    }
                }
            })?;
        }
        metrics.slots.set(count as i64);
        metrics.queue_capacity.set(queue_depth as i64);
        Ok(Self {
            admission: Arc::new(Semaphore::new(count + queue_depth)),
            tx,
            count,
            metrics,
            recent_run: Arc::new(AtomicU64::new(1.0f64.to_bits())),
        })
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// A slot or queue place, or `None` when both are full.
    pub fn try_admit(&self) -> Option<Admission> {
        let permit = self.admission.clone().try_acquire_owned().ok()?;
        self.metrics.queue_depth.inc();
        Some(Admission { place: Place(Arc::new(Mutex::new(Some(permit)))), at: Instant::now() })
    }

    /// Seconds until a refused client should retry: the backlog's expected run time per slot.
    pub fn retry_after(&self) -> u64 {
        let recent = f64::from_bits(self.recent_run.load(Ordering::Relaxed));
        let in_system = (self.metrics.busy.get() + self.metrics.queue_depth.get()).max(1) as f64;
        (recent * in_system / self.count as f64).ceil().clamp(1.0, 120.0) as u64
    }

    /// Runs `job` on the next free slot thread.
    pub fn submit(&self, admission: Admission, job: impl Future<Output = ()> + Send + 'static) {
        let metrics = self.metrics.clone();
        let recent = self.recent_run.clone();
        let job: Job = Box::pin(async move {
            let Admission { place, at } = admission;
            metrics.queue_depth.dec();
            metrics.queue_wait.observe(at.elapsed().as_secs_f64());
            metrics.busy.inc();
            let t0 = Instant::now();
            job.await;
            metrics.busy.dec();
            let run = t0.elapsed().as_secs_f64();
            let old = f64::from_bits(recent.load(Ordering::Relaxed));
            recent.store((0.8 * old + 0.2 * run).to_bits(), Ordering::Relaxed);
            drop(place);
        });
        if self.tx.send(job).is_err() {
            // Only if every slot thread is gone; the dropped job drops the response sender,
            // which the request's handler reports as a 500.
            tracing::error!("no slot thread is running");
        }
    }
}
