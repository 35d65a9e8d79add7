//! `stt-bench plan`: the guide's capacity formula from measured per-pod throughput, and a
//! replay of traffic traces (a daily curve, a spike) through the HPA with the guide's policies,
//! reporting replicas over time, SLO violations and pod-hours.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::hpa::{Hpa, HpaSpec};
use crate::plot::{self, Series};

/// The guide's formula: `Required Pods = Target RPS / RPS per Pod`, rounded up.
pub fn required_pods(target_rps: f64, rps_per_pod: f64) -> u32 {
    (target_rps / rps_per_pod - 1e-9).ceil().max(1.0) as u32
}

/// How one pod behaves under load.
#[derive(Debug, Clone, Copy)]
pub struct PodModel {
    /// Instance slots, one core each.
    pub slots: u32,
    /// CPU request, cores (the HPA's 100 %).
    pub cpu_request: f64,
    /// One request's run time in one instance, s.
    pub service_s: f64,
    /// From the HPA's decision to a ready pod, s.
    pub startup_s: f64,
}

impl PodModel {
    pub fn rps(&self) -> f64 {
        self.slots as f64 / self.service_s
    }
}

/// Erlang C: probability that an arrival waits, `c` servers, offered load `a` = λ/μ (< c).
fn erlang_c(c: u32, a: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..c {
        term *= a / k as f64;
        sum += term;
    }
    let last = term * a / c as f64 * (c as f64 / (c as f64 - a));
    last / (sum + last)
}

/// p95 latency of one pod (M/M/c with c = slots), `None` when it is overloaded.
pub fn p95_latency(pod: &PodModel, rps: f64) -> Option<f64> {
    let mu = 1.0 / pod.service_s;
    let a = rps / mu;
    if a >= pod.slots as f64 {
        return None;
    }
    let c = erlang_c(pod.slots, a);
    let wait = if c > 0.05 { (c / 0.05).ln() / (pod.slots as f64 * mu - rps) } else { 0.0 };
    Some(pod.service_s + wait)
}

/// One second of a replay: (t, offered RPS, replicas, ready, p95 latency or NaN when overloaded).
pub type Sample = (f64, f64, u32, u32, f64);

pub struct SimResult {
    pub name: String,
    pub series: Vec<Sample>,
    pub pod_hours: f64,
    pub violation_s: f64,
    pub requests: f64,
    pub late_requests: f64,
    pub max_replicas: u32,
}

/// Replays `rps(t)` for `duration` seconds, one-second steps, HPA sync every 15 s.
pub fn simulate(
    name: &str,
    spec: HpaSpec,
    pod: PodModel,
    slo_s: f64,
    duration: f64,
    rps: impl Fn(f64) -> f64,
) -> SimResult {
    let mut hpa = Hpa::new(spec);
    // Ready times of the pods (start: the minimum, ready).
    let mut pods: Vec<f64> = vec![0.0; spec.min as usize];
    let mut r = SimResult {
        name: name.into(),
        series: vec![],
        pod_hours: 0.0,
        violation_s: 0.0,
        requests: 0.0,
        late_requests: 0.0,
        max_replicas: spec.min,
    };
    let mut t = 0.0;
    while t < duration {
        let lambda = rps(t).max(0.0);
        let ready = pods.iter().filter(|&&at| at <= t).count() as u32;
        let per_pod = if ready > 0 { lambda / ready as f64 } else { f64::INFINITY };
        let busy = (per_pod * pod.service_s).min(pod.slots as f64);
        let utilisation = busy / pod.cpu_request;
        let p95 = if ready > 0 { p95_latency(&pod, per_pod) } else { None };
        let late = !matches!(p95, Some(l) if l <= slo_s);
        r.requests += lambda;
        if late {
            r.violation_s += 1.0;
            r.late_requests += lambda;
        }
        if (t % spec.sync_s).abs() < 1e-9 {
            let current = pods.len() as u32;
            let desired = hpa.sync(t, current, ready, utilisation);
            if desired > current {
                pods.extend(std::iter::repeat_n(t + pod.startup_s, (desired - current) as usize));
            } else if desired < current {
                // Pods still starting go first, then the newest.
                pods.sort_by(f64::total_cmp);
                pods.truncate(desired as usize);
            }
        }
        r.pod_hours += pods.len() as f64 / 3600.0;
        r.max_replicas = r.max_replicas.max(pods.len() as u32);
        r.series.push((t, lambda, pods.len() as u32, ready, p95.unwrap_or(f64::NAN)));
        t += 1.0;
    }
    r
}

#[derive(clap::Args, Clone)]
pub struct Args {
    /// The traffic to plan for, requests per second (the peak of the traces).
    #[arg(long)]
    target_rps: f64,
    /// Measured requests per second one pod sustains under the latency SLO (`stt-bench load`);
    /// default: slots ÷ service time.
    #[arg(long)]
    rps_per_pod: Option<f64>,
    /// One request's run time in one instance, s (measured: docs/benchmarks/audio_benchmark_report.md).
    #[arg(long, default_value_t = 3.0)]
    service_seconds: f64,
    #[arg(long, default_value_t = 4)]
    slots: u32,
    #[arg(long, default_value_t = 2.5)]
    cpu_request: f64,
    /// From the HPA's decision to a ready pod, s (scheduling, image, start-up).
    #[arg(long, default_value_t = 30.0)]
    pod_startup_seconds: f64,
    /// p95 latency objective, s (the guide's critical threshold).
    #[arg(long, default_value_t = 5.0)]
    slo_seconds: f64,
    #[arg(long, default_value = "docs/benchmarks/capacity_plan_report.md")]
    out: PathBuf,
}

/// A working day compressed into `len` seconds: night at 15 % of the peak, noon at the peak.
pub fn daily(peak: f64, len: f64) -> impl Fn(f64) -> f64 {
    move |t| peak * (0.15 + 0.85 * (1.0 - (2.0 * std::f64::consts::PI * t / len).cos()) / 2.0)
}

/// A quiet baseline (25 % of the peak) with a 10-minute burst to the peak after 20 minutes.
pub fn spike(peak: f64) -> impl Fn(f64) -> f64 {
    move |t| if (1200.0..1800.0).contains(&t) { peak } else { 0.25 * peak }
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let pod = PodModel {
        slots: a.slots,
        cpu_request: a.cpu_request,
        service_s: a.service_seconds,
        startup_s: a.pod_startup_seconds,
    };
    let per_pod = a.rps_per_pod.unwrap_or_else(|| pod.rps());
    let pods = required_pods(a.target_rps, per_pod);
    // Where the HPA settles: busy cores per pod = its target share of the CPU request.
    let hpa_rps_per_pod = HpaSpec::guide().target * pod.cpu_request / pod.service_s;
    let at_target = required_pods(a.target_rps, hpa_rps_per_pod.min(per_pod));
    let mut spec = HpaSpec::guide();
    // The guide's max of 10, raised when the target needs more, so the replay shows the HPA's
    // dynamics rather than the cap.
    spec.max = spec.max.max(at_target + 2);
    let runs = [
        simulate(
            "daily curve (24 h)",
            spec,
            pod,
            a.slo_seconds,
            86_400.0,
            daily(a.target_rps, 86_400.0),
        ),
        simulate("spike (1 h)", spec, pod, a.slo_seconds, 3600.0, spike(a.target_rps)),
    ];
    let mut s = String::new();
    let _ = writeln!(s, "# Capacity plan\n");
    let _ = writeln!(
        s,
        "Generated by `stt-bench plan --target-rps {}`. Pod model: {} slots, {} CPU requested, {:.2} s per request in one instance, pods ready {} s after the HPA asks.\n",
        a.target_rps, a.slots, a.cpu_request, a.service_seconds, a.pod_startup_seconds
    );
    let _ = writeln!(s, "## The guide's formula\n");
    let _ = writeln!(s, "| | value |\n|---|---:|");
    let _ = writeln!(s, "| target RPS | {:.2} |", a.target_rps);
    let _ = writeln!(s, "| RPS per pod | {per_pod:.3} |");
    let _ = writeln!(s, "| required pods = target ÷ per pod | **{pods}** |");
    let _ = writeln!(
        s,
        "| pods where the HPA settles (70 % of {} CPU requested = {:.2} busy slots per pod) | {at_target} |\n",
        a.cpu_request,
        HpaSpec::guide().target * a.cpu_request
    );
    let _ = writeln!(
        s,
        "## Replaying traffic through the HPA\n\nThe guide's HPA (min {}, max {}, 70 % CPU, tolerance 10 %, 15 s sync, scale-up 60 s window and 2 pods / 60 s, scale-down 300 s window and 1 pod / 120 s); one-second steps; latency per pod from an M/M/{} queue; SLO: p95 ≤ {} s.\n",
        spec.min, spec.max, a.slots, a.slo_seconds
    );
    let _ = writeln!(s, "| trace | max replicas | pod-hours | time over SLO | requests over SLO |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for r in &runs {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.0} s | {:.2} % |",
            r.name,
            r.max_replicas,
            r.pod_hours,
            r.violation_s,
            100.0 * r.late_requests / r.requests.max(1e-9)
        );
    }
    let dir = a.out.parent().map(PathBuf::from).unwrap_or_default();
    std::fs::create_dir_all(&dir)?;
    for (i, r) in runs.iter().enumerate() {
        let svg = dir.join(format!("capacity_plan_{i}.svg"));
        let step = (r.series.len() / 1500).max(1);
        let pts = |f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
            r.series.iter().step_by(step).map(|p| (p.0 / 60.0, f(p))).collect()
        };
        plot::lines(
            &svg,
            &format!("{}: offered load and replicas", r.name),
            "minutes",
            "RPS / pods",
            &[
                Series { name: "offered RPS".into(), points: pts(&|p| p.1) },
                Series { name: "replicas".into(), points: pts(&|p| p.2 as f64) },
                Series { name: "ready".into(), points: pts(&|p| p.3 as f64) },
            ],
        )?;
        let _ = writeln!(
            s,
            "\n![{}]({})",
            r.name,
            svg.file_name().map(|f| f.to_string_lossy()).unwrap_or_default()
        );
    }
    std::fs::write(&a.out, &s)?;
    print!("{s}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_example_needs_five_pods() {
        assert_eq!(required_pods(10.0, 2.0), 5);
        assert_eq!(required_pods(10.5, 2.0), 6);
        assert_eq!(required_pods(0.1, 2.0), 1);
    }

    #[test]
    fn one_slot_queue_latency_matches_mm1() {
        // M/M/1 at ρ = 0.5, S = 1 s: P(wait) = 0.5, wait95 = ln(10) / 0.5.
        let pod = PodModel { slots: 1, cpu_request: 1.0, service_s: 1.0, startup_s: 0.0 };
        let l = p95_latency(&pod, 0.5).expect("stable");
        assert!((l - (1.0 + 10f64.ln() / 0.5)).abs() < 1e-9, "{l}");
        assert_eq!(p95_latency(&pod, 1.0), None);
    }

    #[test]
    fn a_spike_is_absorbed_within_the_policies() {
        let pod = PodModel { slots: 4, cpu_request: 2.5, service_s: 3.0, startup_s: 30.0 };
        let r = simulate("spike", HpaSpec::guide(), pod, 5.0, 3600.0, spike(6.0));
        for w in r.series.windows(61) {
            assert!(w[60].2 <= w[0].2 + 2, "more than 2 pods added within 60 s at {}", w[60].0);
        }
        for w in r.series.windows(121) {
            assert!(w[0].2 <= w[120].2 + 1, "more than 1 pod removed within 120 s at {}", w[120].0);
        }
        assert!(
            r.max_replicas > 2 && r.violation_s > 0.0,
            "the burst outruns the scale-up: {}",
            r.violation_s
        );
    }
}
