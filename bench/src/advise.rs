//! `stt-bench advise`: the guide's decision matrix over measured metrics.

use clap::Args as ClapArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ScaleUp,
    ScaleOut,
    SmallerModel,
    CheckBottlenecks,
    AddMemory,
    Healthy,
}

#[derive(Debug, Clone, Copy)]
pub struct Observed {
    /// p95 latency, s.
    pub latency_s: f64,
    /// The latency objective, s (the guide's warning: 2 s).
    pub latency_target_s: f64,
    /// Throughput achieved vs demanded, RPS.
    pub rps: f64,
    pub demand_rps: f64,
    /// CPU utilisation of the request, 0–1.
    pub cpu: f64,
    /// Scaling efficiency at the current core/slot count, 0–1.
    pub efficiency: f64,
    /// Peak memory ÷ limit, 0–1; OOM events.
    pub memory: f64,
    pub oom: bool,
}

/// The guide's flowchart and quick-reference table, with the reason.
pub fn decide(o: &Observed) -> (Action, String) {
    if o.oom || o.memory > 0.85 {
        return (
            Action::AddMemory,
            format!(
                "memory at {:.0} % of the limit{}",
                100.0 * o.memory,
                if o.oom { " with OOM events" } else { "" }
            ),
        );
    }
    if o.latency_s > o.latency_target_s {
        return if o.efficiency > 0.7 && o.cpu < 0.7 {
            (
                Action::ScaleUp,
                format!(
                    "latency {:.2} s > {:.2} s, CPU {:.0} % < 70 %, efficiency {:.0} % > 70 %: add CPU (and slots) per pod",
                    o.latency_s,
                    o.latency_target_s,
                    100.0 * o.cpu,
                    100.0 * o.efficiency
                ),
            )
        } else if o.cpu >= 0.7 {
            (
                Action::ScaleOut,
                format!(
                    "latency {:.2} s > {:.2} s with CPU {:.0} % ≥ 70 %: queueing, add pods",
                    o.latency_s,
                    o.latency_target_s,
                    100.0 * o.cpu
                ),
            )
        } else {
            (
                Action::SmallerModel,
                format!(
                    "latency {:.2} s > {:.2} s, efficiency {:.0} % < 70 %: more CPU will not help, use a smaller or quantised model",
                    o.latency_s,
                    o.latency_target_s,
                    100.0 * o.efficiency
                ),
            )
        };
    }
    if o.rps < o.demand_rps {
        return if o.cpu > 0.7 {
            (
                Action::ScaleOut,
                format!(
                    "throughput {:.2} < demand {:.2} RPS with CPU {:.0} % > 70 %: add pods",
                    o.rps,
                    o.demand_rps,
                    100.0 * o.cpu
                ),
            )
        } else {
            (
                Action::CheckBottlenecks,
                format!(
                    "throughput {:.2} < demand {:.2} RPS but CPU only {:.0} %: check slots vs cores, queue depth, client/network",
                    o.rps,
                    o.demand_rps,
                    100.0 * o.cpu
                ),
            )
        };
    }
    (Action::Healthy, "latency and throughput within targets".into())
}

#[derive(ClapArgs, Clone)]
pub struct Args {
    #[arg(long)]
    latency: f64,
    #[arg(long, default_value_t = 2.0)]
    latency_target: f64,
    #[arg(long)]
    rps: f64,
    #[arg(long)]
    demand_rps: f64,
    /// CPU utilisation, 0–1.
    #[arg(long)]
    cpu: f64,
    /// Scaling efficiency, 0–1 (`stt-bench cpu-scaling`).
    #[arg(long, default_value_t = 0.9)]
    efficiency: f64,
    #[arg(long, default_value_t = 0.5)]
    memory: f64,
    #[arg(long)]
    oom: bool,
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let (action, why) = decide(&Observed {
        latency_s: a.latency,
        latency_target_s: a.latency_target,
        rps: a.rps,
        demand_rps: a.demand_rps,
        cpu: a.cpu,
        efficiency: a.efficiency,
        memory: a.memory,
        oom: a.oom,
    });
    println!("{action:?}: {why}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(latency_s: f64, rps: f64, cpu: f64, efficiency: f64) -> Observed {
        Observed {
            latency_s,
            latency_target_s: 2.0,
            rps,
            demand_rps: 10.0,
            cpu,
            efficiency,
            memory: 0.5,
            oom: false,
        }
    }

    #[test]
    fn the_guides_quick_reference_table() {
        assert_eq!(decide(&o(3.0, 10.0, 0.5, 0.8)).0, Action::ScaleUp);
        assert_eq!(decide(&o(3.0, 10.0, 0.5, 0.5)).0, Action::SmallerModel);
        assert_eq!(decide(&o(1.0, 5.0, 0.8, 0.5)).0, Action::ScaleOut);
        assert_eq!(decide(&o(1.0, 5.0, 0.5, 0.9)).0, Action::CheckBottlenecks);
        assert_eq!(decide(&o(1.0, 10.0, 0.5, 0.9)).0, Action::Healthy);
        assert_eq!(decide(&Observed { oom: true, ..o(1.0, 10.0, 0.5, 0.9) }).0, Action::AddMemory);
    }
}
