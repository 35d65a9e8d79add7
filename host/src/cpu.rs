//! How much CPU this process may use (cgroup v2 `cpu.max`, else the core count), and the CPU
//! clock of a slot thread, which is what its instance has used.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Cores allowed by one cgroup v2 `cpu.max` file ("max 100000" or "250000 100000").
pub fn cores_from_cpu_max(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let quota = it.next()?;
    let period: f64 = it.next()?.parse().ok()?;
    if quota == "max" || period <= 0.0 {
        return None;
    }
    let quota: f64 = quota.parse().ok()?;
    (quota > 0.0).then_some(quota / period)
}

/// The tightest `cpu.max` on the path from this process's cgroup up to the root: a limit set
/// on a parent (a pod) applies to its children (the container) too.
fn cgroup_cores(root: &Path, own: &str) -> Option<f64> {
    let mut dir = PathBuf::from(own.trim());
    let mut best: Option<f64> = None;
    loop {
        let rel = dir.strip_prefix("/").unwrap_or(&dir);
        if let Some(c) = std::fs::read_to_string(root.join(rel).join("cpu.max"))
            .ok()
            .and_then(|t| cores_from_cpu_max(&t))
        {
            best = Some(best.map_or(c, |b: f64| b.min(c)));
        }
        if !dir.pop() {
            return best;
        }
    }
}

/// The CPU this process may use, in cores.
pub fn usable_cores() -> f64 {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string)))
        .unwrap_or_else(|| "/".into());
    cgroup_cores(Path::new("/sys/fs/cgroup"), &own).map_or(cores, |c| c.min(cores))
}

/// One instance is one core of work: a slot per whole core, at least one.
pub fn slots_for(cores: f64) -> usize {
    if cores.is_finite() { (cores.floor() as usize).max(1) } else { 1 }
}

/// The CPU clock of one thread (`pthread_getcpuclockid`), readable from any other: a slot
/// thread's, which measures its instance against the CPU budget and is read by the server when
/// the instance's response head arrives (which may be before the instance yields).
#[derive(Debug, Clone, Copy)]
pub struct ThreadClock {
    clock: libc::clockid_t,
    start: Duration,
}

impl ThreadClock {
    /// The calling thread's clock, counted from now; `None` where the platform has none.
    pub fn start_here() -> Option<Self> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: pthread_self is always valid for the calling thread; `clock` is written.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
        let mut me = Self { clock, start: Duration::ZERO };
        me.start = (rc == 0).then(|| me.read()).flatten()?;
        Some(me)
    }

    fn read(&self) -> Option<Duration> {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid out-pointer; an invalid clock gives an error code, not UB.
        let rc = unsafe { libc::clock_gettime(self.clock, &mut ts) };
        (rc == 0).then(|| {
            Duration::new(
                u64::try_from(ts.tv_sec).unwrap_or(0),
                ts.tv_nsec.clamp(0, 999_999_999) as u32,
            )
        })
    }

    /// CPU time the thread has used since [`Self::start_here`].
    pub fn used(&self) -> Duration {
        self.read().map_or(Duration::ZERO, |now| now.saturating_sub(self.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_is_read_as_cores() {
        assert_eq!(cores_from_cpu_max("max 100000\n"), None);
        assert_eq!(cores_from_cpu_max("400000 100000\n"), Some(4.0));
        assert_eq!(cores_from_cpu_max("250000 100000"), Some(2.5));
        assert_eq!(cores_from_cpu_max("garbage"), None);
        assert_eq!(slots_for(2.5), 2);
        assert_eq!(slots_for(4.0), 4);
        assert_eq!(slots_for(0.5), 1);
    }

    #[test]
    fn the_tightest_limit_on_the_path_wins() {
        let root = std::env::temp_dir().join(format!("stt-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(root.join("kubepods/pod1/ctr")).expect("dirs");
        std::fs::write(root.join("kubepods/pod1/cpu.max"), "300000 100000\n").expect("write");
        std::fs::write(root.join("kubepods/pod1/ctr/cpu.max"), "max 100000\n").expect("write");
        assert_eq!(cgroup_cores(&root, "/kubepods/pod1/ctr\n"), Some(3.0));
        assert_eq!(cgroup_cores(&root, "/elsewhere"), None);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_threads_clock_is_read_from_another_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            let clock = ThreadClock::start_here().expect("thread CPU clock");
            let _ = tx.send(clock);
            let t0 = std::time::Instant::now();
            while t0.elapsed() < Duration::from_millis(80) {
                std::hint::black_box(0u64);
            }
        });
        let clock = rx.recv().expect("clock");
        worker.join().expect("worker");
        // The thread has ended; its clock reads as nothing more, never as a panic.
        let _ = clock.used();
        // This thread's clock advances with its work: spin until it shows 40 ms (bounded in wall
        // time; on a loaded machine 50 ms of wall time may hold much less CPU).
        let here = ThreadClock::start_here().expect("clock");
        let t0 = std::time::Instant::now();
        while here.used() < Duration::from_millis(40) && t0.elapsed() < Duration::from_secs(10) {
            std::hint::black_box(0u64);
        }
        assert!(here.used() >= Duration::from_millis(40), "{:?}", here.used());
    }

    #[test]
    fn a_threads_clock_counts_work_not_sleep() {
        let clock = ThreadClock::start_here().expect("clock");
        std::thread::sleep(Duration::from_millis(50));
        let slept = clock.used();
        let mut x = 1u64;
        while clock.used() - slept < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(3).wrapping_add(1));
        }
        assert!(slept < Duration::from_millis(20), "sleeping used {slept:?} of CPU");
    }
}
