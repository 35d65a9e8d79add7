//! Every `stt-bench` subcommand in its `--quick` mode, against the real host, component, model
//! and audio: each writes a report with measured rows.

use std::path::{Path, PathBuf};
use std::process::Command;

use stt_testkit::paths::{temp_dir, workspace};

fn bench(args: &[&str], out: &Path) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_stt-bench"))
        .current_dir(workspace())
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("stt-bench");
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(out).expect("report written")
}

fn out_dir() -> PathBuf {
    temp_dir("bench-quick")
}

/// The numeric cells of the report's table rows that start with `prefix`.
fn row_numbers(report: &str, prefix: &str) -> Vec<f64> {
    report
        .lines()
        .filter(|l| l.starts_with(prefix))
        .flat_map(|l| {
            l.split('|')
                .filter_map(|c| c.trim().trim_end_matches(" %").parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn audio_quick_measures_the_function_and_the_native_engine() {
    let r = bench(&["audio", "--quick"], &out_dir().join("audio.md"));
    for implementation in ["wasm function via stt-host", "native engine"] {
        let row = r
            .lines()
            .find(|l| l.starts_with("| ") && l.contains(implementation))
            .unwrap_or_else(|| panic!("{implementation}:\n{r}"));
        let rtf: f64 = row.split('|').nth(4).and_then(|c| c.trim().parse().ok()).expect("RTF cell");
        assert!(rtf > 0.0 && rtf < 5.0, "{row}");
    }
}

#[test]
fn cpu_scaling_quick_measures_one_slot() {
    let r = bench(&["cpu-scaling", "--quick"], &out_dir().join("cpu.md"));
    let n = row_numbers(&r, "| 1 |");
    assert!(n.len() >= 5 && n[1] > 0.0, "throughput of one slot:\n{r}");
    assert!(r.contains("Slot tuning"));
}

#[test]
fn load_quick_sends_poisson_traffic_and_reads_the_metrics() {
    let r = bench(&["load", "--quick", "--rps", "0.5"], &out_dir().join("load.md"));
    let n = row_numbers(&r, "| 0.50 |");
    // target, achieved, ok, 503, errors, …
    assert!(n.len() >= 5 && n[2] == 4.0 && n[4] == 0.0, "4 requests served, no errors:\n{r}");
}

#[test]
fn plan_reproduces_the_guides_example() {
    let r =
        bench(&["plan", "--target-rps", "10", "--rps-per-pod", "2"], &out_dir().join("plan.md"));
    assert!(r.contains("| required pods = target ÷ per pod | **5** |"), "{r}");
    assert!(r.contains("daily curve") && r.contains("spike"));
}

#[test]
fn instances_quick_compares_the_snapshot_with_loading_per_request() {
    let r = bench(&["instances", "--quick"], &out_dir().join("instances.md"));
    const SNAP: &str = "snapshot: models in the initial memory";
    let naive = row_numbers(
        &r,
        "| stt-host | as built: model read per request | tiny.en | loaded_per_request |",
    );
    assert_eq!(naive.len(), 3, "start rows:\n{r}");
    // p50 of a ready instance: the snapshot skips the model load entirely, under either host,
    // for either model.
    for model in ["tiny.en", "base"] {
        let host = row_numbers(&r, &format!("| stt-host | {SNAP} | {model} | preloaded |"));
        let spin = row_numbers(&r, &format!("| spin up | {SNAP} | {model} | preloaded |"));
        assert!(host.len() == 3 && spin.len() == 2, "start rows of {model}:\n{r}");
        assert!(host[0] > 0.0 && host[0] * 10.0 < naive[0], "{host:?} vs {naive:?}\n{r}");
        assert!(spin[0] > 0.0 && spin[0] * 10.0 < naive[0], "{spin:?} vs {naive:?}\n{r}");
        for h in ["stt-host", "spin up"] {
            let memory = row_numbers(&r, &format!("| {h} | {SNAP} | {model} | "));
            assert!(memory.len() >= 8 + 2, "start and memory rows of {h}, {model}:\n{r}");
        }
    }
}
