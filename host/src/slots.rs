//! Instance slots: at most `slots` instances compute at once, each on its own OS thread (so an
//! instance's CPU time is its thread's and a busy instance never stalls the HTTP runtime), behind
//! a bounded queue. Admission is decided at once: a slot or a queue place, or a refusal.
//!
//! An instance that sends requests to its own app (a long recording's chunks) waits for them
//! without its slot or its place: it becomes a waiting parent, of which at most `parents` exist
//! at once, each parked on a thread of its own. The threads are therefore `slots + parents`, and
//! N long requests on N slots cannot deadlock: their chunks get the slots the parents gave up.

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
    /// Instances computing: one permit per slot.
    cpu: Arc<Semaphore>,
    /// Waiting parents.
    parents: Arc<Semaphore>,
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

/// An admitted request while its instance runs: what it holds (its slot, its place, or its
/// place among the waiting parents), released when it ends.
#[derive(Clone)]
pub struct Running(Arc<Mutex<Held>>);

struct Held {
    slot: Option<OwnedSemaphorePermit>,
    place: Option<Place>,
    parent: Option<OwnedSemaphorePermit>,
    parents: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Held {
    fn release_slot(&mut self) {
        if self.slot.take().is_some() {
            self.metrics.busy.dec();
        }
    }
}

impl Running {
    /// Makes this instance a waiting parent: it gives up its slot and its place, for the
    /// requests it sends to its own app to use. `false` when as many parents as allowed are
    /// waiting already: the instance keeps its slot and may not wait on other instances (it
    /// transcribes its chunks itself).
    pub fn wait_for_children(&self) -> bool {
        let Ok(mut held) = self.0.lock() else { return false };
        if held.parent.is_some() {
            return true;
        }
        let Ok(permit) = held.parents.clone().try_acquire_owned() else { return false };
        held.parent = Some(permit);
        held.release_slot();
        held.place.take();
        held.metrics.waiting_parents.inc();
        true
    }

    fn end(&self) {
        if let Ok(mut held) = self.0.lock() {
            held.release_slot();
            held.place.take();
            if held.parent.take().is_some() {
                held.metrics.waiting_parents.dec();
            }
        }
    }
}

impl Slots {
    /// `count` slots, `queue_depth` places to wait for one, and room for `parents` waiting
    /// parents.
    pub fn start(
        count: usize,
        queue_depth: usize,
        parents: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..count + parents {
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
            cpu: Arc::new(Semaphore::new(count)),
            parents: Arc::new(Semaphore::new(parents)),
            tx,
            count,
            metrics,
            recent_run: Arc::new(AtomicU64::new(1.0f64.to_bits())),
        })
    }

    pub fn count(&self) -> usize {
        self.count
    }

    fn admission(&self, permit: OwnedSemaphorePermit) -> Admission {
        self.metrics.queue_depth.inc();
        Admission { place: Place(Arc::new(Mutex::new(Some(permit)))), at: Instant::now() }
    }

    /// A slot or queue place, or `None` when both are full.
    pub fn try_admit(&self) -> Option<Admission> {
        let permit = self.admission.clone().try_acquire_owned().ok()?;
        Some(self.admission(permit))
    }

    /// A slot or queue place, waiting for one: for a chunk of a request admitted already, which
    /// waits its turn instead of failing its parent.
    pub async fn admit(&self) -> Option<Admission> {
        // `None` only if the semaphore were closed, which it never is.
        let permit = self.admission.clone().acquire_owned().await.ok()?;
        Some(self.admission(permit))
    }

    /// Seconds until a refused client should retry: the backlog's expected run time per slot.
    pub fn retry_after(&self) -> u64 {
        let recent = f64::from_bits(self.recent_run.load(Ordering::Relaxed));
        let in_system = (self.metrics.busy.get() + self.metrics.queue_depth.get()).max(1) as f64;
        (recent * in_system / self.count as f64).ceil().clamp(1.0, 120.0) as u64
    }

    /// Runs `job` on a slot thread once a slot is free; `job` gets the handle on what it holds.
    pub fn submit<F>(&self, admission: Admission, job: impl FnOnce(Running) -> F + Send + 'static)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (metrics, recent) = (self.metrics.clone(), self.recent_run.clone());
        let (cpu, parents) = (self.cpu.clone(), self.parents.clone());
        let job: Job = Box::pin(async move {
            let Admission { place, at } = admission;
            let Ok(slot) = cpu.acquire_owned().await else { return };
            metrics.queue_depth.dec();
            metrics.queue_wait.observe(at.elapsed().as_secs_f64());
            metrics.busy.inc();
            let running = Running(Arc::new(Mutex::new(Held {
                slot: Some(slot),
                place: Some(place),
                parent: None,
                parents,
                metrics: metrics.clone(),
            })));
            let t0 = Instant::now();
            job(running.clone()).await;
            running.end();
            let run = t0.elapsed().as_secs_f64();
            let old = f64::from_bits(recent.load(Ordering::Relaxed));
            recent.store((0.8 * old + 0.2 * run).to_bits(), Ordering::Relaxed);
        });
        if self.tx.send(job).is_err() {
            // Only if every slot thread is gone; the dropped job drops the response sender,
            // which the request's handler reports as a 500.
            tracing::error!("no slot thread is running");
        }
    }
}
