//! The native command as a shell runs it.

use std::process::{Command, Stdio};

use stt_testkit::paths::{data_dir, models_dir};

/// A reader that goes away before the first line (`stt transcribe … | head -c 0`) ends the
/// command with an error on stderr and status 2, not a panic.
#[test]
fn a_closed_standard_output_is_an_error_not_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stt"))
        .arg("transcribe")
        .arg("--model")
        .arg(models_dir().join("tiny.en"))
        .arg(data_dir().join("jfk.flac"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stt");
    // The model loads before anything is written, so the pipe is closed by then.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("stt ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("writing to standard output"), "{stderr}");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
}
