//! k8s/ checked offline against pinned schemas and the scaling guide, with the alert
//! expressions' metrics checked against a scrape of a real running host
//! (k8s/tests/validate.py does the checking; `make test` installs its Python and npm packages).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{agent, start, transcribe_jfk, workspace};

#[test]
fn manifests_validate_and_alerts_use_metrics_the_host_exports() {
    let host = start();
    let (status, body) = transcribe_jfk(&agent(), &host);
    assert_eq!(status, 200, "{body}");
    let metrics = std::env::temp_dir().join(format!("stt-metrics-{}.txt", std::process::id()));
    std::fs::write(&metrics, host.metrics()).expect("write metrics");
    let crds = std::env::var_os("STT_SPINKUBE_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/k8s"));
    let node_modules =
        std::env::var_os("STT_NODE_MODULES").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME"))
                .join(".cache/stt-edge/npm/node_modules")
        });
    let out = Command::new("python3")
        .arg(workspace().join("k8s/tests/validate.py"))
        .arg("--metrics")
        .arg(&metrics)
        .arg("--spinkube-crds")
        .arg(&crds)
        .arg("--node-modules")
        .arg(&node_modules)
        .output()
        .expect("python3 k8s/tests/validate.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The checks really ran: schemas, the guide's HPA numbers, the alert metrics.
    for expected in [
        "Deployment/stt-api against Kubernetes 1.37.0 (strict)",
        "SpinApp/stt-api-spin against the SpinKube CRD",
        "PrometheusRule/stt-scaling against the prometheus-operator schema",
        "HPA behavior",
        "HighLatency: http_request_duration_seconds_bucket is exported by the host's /metrics",
    ] {
        assert!(stdout.contains(expected), "{expected} not checked:\n{stdout}");
    }
}
