//! The Kubernetes HorizontalPodAutoscaler's algorithm (autoscaling/v2, as in
//! pkg/controller/podautoscaler): every sync period the desired count is
//! `ceil(current × utilisation / target)` unless within the tolerance, stabilised over the
//! behaviour's windows (the minimum of recent recommendations for scale-up, the maximum for
//! scale-down) and limited by the Pods policies (at most `value` pods added/removed per
//! `period`, counted from the scale events inside the period).

/// One direction's behaviour: stabilisation window and one Pods policy.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub stabilization_s: f64,
    pub pods: u32,
    pub period_s: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct HpaSpec {
    pub min: u32,
    pub max: u32,
    /// Target CPU utilisation of the request, 0–1.
    pub target: f64,
    pub tolerance: f64,
    pub sync_s: f64,
    pub up: Rule,
    pub down: Rule,
}

impl HpaSpec {
    /// The scaling guide's HPA (k8s/base/hpa.yaml) with Kubernetes' defaults for the rest.
    pub fn guide() -> Self {
        Self {
            min: 2,
            max: 10,
            target: 0.70,
            tolerance: 0.10,
            sync_s: 15.0,
            up: Rule { stabilization_s: 60.0, pods: 2, period_s: 60.0 },
            down: Rule { stabilization_s: 300.0, pods: 1, period_s: 120.0 },
        }
    }
}

pub struct Hpa {
    pub spec: HpaSpec,
    /// (time, recommendation)
    recommendations: Vec<(f64, u32)>,
    /// (time, signed change)
    events: Vec<(f64, i64)>,
}

impl Hpa {
    pub fn new(spec: HpaSpec) -> Self {
        Self { spec, recommendations: Vec::new(), events: Vec::new() }
    }

    /// One sync at `now`: `current` replicas, `ready` of them reporting `utilisation` (average
    /// CPU used ÷ requested over ready pods). Returns the new replica count.
    pub fn sync(&mut self, now: f64, current: u32, ready: u32, utilisation: f64) -> u32 {
        let s = self.spec;
        let ratio = if s.target > 0.0 { utilisation / s.target } else { 1.0 };
        let raw = if (ratio - 1.0).abs() <= s.tolerance || ready == 0 {
            current
        } else {
            // Scaling up, pods not ready yet count as using nothing (Kubernetes' rule), which
            // damps scale-up while new pods start.
            let assumed = if ratio > 1.0 && ready < current {
                utilisation * ready as f64 / current as f64
            } else {
                utilisation
            };
            let r = assumed / s.target;
            if (r - 1.0).abs() <= s.tolerance || (ratio > 1.0) != (r > 1.0) {
                current
            } else {
                // The epsilon keeps float noise (3 × 0.6667 = 2.0000001) from adding a pod.
                (current as f64 * r - 1e-9).ceil() as u32
            }
        };
        self.recommendations.push((now, raw));
        let window = s.up.stabilization_s.max(s.down.stabilization_s);
        self.recommendations.retain(|(t, _)| *t > now - window);
        // Stabilise: scale up only to the lowest recommendation of the up window, down only to
        // the highest of the down window.
        let up_floor = self.recent(now, s.up.stabilization_s).min().unwrap_or(raw);
        let down_ceiling = self.recent(now, s.down.stabilization_s).max().unwrap_or(raw);
        let mut desired = current;
        if up_floor > current {
            desired = up_floor;
        } else if down_ceiling < current {
            desired = down_ceiling;
        }
        // Policies: the replica count at the start of the period ± value.
        if desired > current {
            let added: i64 = self.changes(now, s.up.period_s, |c| c > 0);
            let limit = (current as i64 - added + s.up.pods as i64).max(current as i64) as u32;
            desired = desired.min(limit);
        } else if desired < current {
            let removed: i64 = -self.changes(now, s.down.period_s, |c| c < 0);
            let limit =
                (current as i64 + removed - s.down.pods as i64).min(current as i64).max(0) as u32;
            desired = desired.max(limit);
        }
        let desired = desired.clamp(s.min, s.max);
        if desired != current {
            self.events.push((now, desired as i64 - current as i64));
        }
        let keep = s.up.period_s.max(s.down.period_s);
        self.events.retain(|(t, _)| *t > now - keep);
        desired
    }

    fn recent(&self, now: f64, window: f64) -> impl Iterator<Item = u32> + '_ {
        self.recommendations.iter().filter(move |(t, _)| *t > now - window).map(|(_, r)| *r)
    }

    fn changes(&self, now: f64, period: f64, which: impl Fn(i64) -> bool) -> i64 {
        self.events.iter().filter(|(t, c)| *t > now - period && which(*c)).map(|(_, c)| c).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the HPA every 15 s with all pods ready at `utilisation(t, replicas)`.
    fn run(start: u32, until: f64, utilisation: impl Fn(f64, u32) -> f64) -> Vec<(f64, u32)> {
        let mut hpa = Hpa::new(HpaSpec::guide());
        let mut replicas = start;
        let mut out = vec![];
        let mut t = 0.0;
        while t <= until {
            replicas = hpa.sync(t, replicas, replicas, utilisation(t, replicas));
            out.push((t, replicas));
            t += 15.0;
        }
        out
    }

    fn at(trace: &[(f64, u32)], t: f64) -> u32 {
        trace.iter().rev().find(|(s, _)| *s <= t).map(|(_, r)| *r).unwrap_or(0)
    }

    #[test]
    fn a_step_load_scales_up_at_most_two_pods_per_minute_after_the_window() {
        // From t = 100 s the load needs 7 cores of request-equivalents: 10 pods at 70 %.
        let trace = run(2, 600.0, |t, r| if t < 100.0 { 0.7 } else { 7.0 / r as f64 });
        // Hand-computed: syncs at 105, 120, …; the last pre-step recommendation (2, at 90 s)
        // leaves the 60 s window at 150 s; then +2 per 60 s.
        assert_eq!(at(&trace, 135.0), 2);
        assert_eq!(at(&trace, 150.0), 4);
        assert_eq!(at(&trace, 195.0), 4);
        assert_eq!(at(&trace, 210.0), 6);
        assert_eq!(at(&trace, 270.0), 8);
        assert_eq!(at(&trace, 330.0), 10);
        assert_eq!(at(&trace, 600.0), 10);
        for (t, r) in &trace {
            assert!(
                *r <= at(&trace, t - 60.0).max(2) + 2,
                "more than 2 pods added in the 60 s before {t}"
            );
        }
    }

    #[test]
    fn a_drop_scales_down_one_pod_per_two_minutes_after_five_minutes() {
        // 10 busy pods; at t = 600 s the load falls to what 2 pods carry at 70 %.
        let trace = run(10, 2400.0, |t, r| if t < 600.0 { 0.7 } else { 1.4 / r as f64 });
        // The last high recommendation (585 s) leaves the 300 s window at 885 s; then −1 per
        // 120 s: 9 at 885, 8 at 1005, … 2 at 1725.
        assert_eq!(at(&trace, 870.0), 10);
        assert_eq!(at(&trace, 885.0), 9);
        assert_eq!(at(&trace, 1000.0), 9);
        assert_eq!(at(&trace, 1005.0), 8);
        assert_eq!(at(&trace, 1710.0), 3);
        assert_eq!(at(&trace, 1725.0), 2);
        assert_eq!(at(&trace, 2400.0), 2);
    }

    #[test]
    fn within_the_tolerance_nothing_moves() {
        let trace = run(4, 900.0, |_, _| 0.76);
        assert!(trace.iter().all(|(_, r)| *r == 4));
    }
}
