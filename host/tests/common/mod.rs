//! Starting `stt-host serve` for the HTTP tests: a real process on 127.0.0.1 ports chosen by the
//! OS, with the real component and model; its log goes to a file the tests can read.
#![allow(dead_code)] // each test crate uses a different part of these helpers

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn data_dir() -> PathBuf {
    std::env::var_os("STT_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("../shared/data"))
}

pub fn models_dir() -> PathBuf {
    std::env::var_os("STT_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("models"))
}

pub struct Host {
    pub child: Child,
    pub base: String,
    pub admin: String,
    pub log: PathBuf,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    /// The admin listener's `/metrics` text.
    pub fn metrics(&self) -> String {
        let mut r = agent().get(format!("{}/metrics", self.admin)).call().expect("GET /metrics");
        assert_eq!(r.status(), 200);
        r.body_mut().read_to_string().expect("metrics body")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM, as Kubernetes does when it stops a pod.
    pub fn terminate(&self) {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(ok.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

/// Starts the host on `manifest` with extra flags and environment.
pub fn start_host(manifest: &Path, args: &[&str], env: &[(&str, &str)]) -> Host {
    let root = workspace();
    assert!(root.join("build/stt_function.wasm").is_file(), "build/stt_function.wasm is missing: run `make component`");
    let log = std::env::temp_dir().join(format!(
        "stt-host-test-{}-{}.log",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_stt-host"))
        .current_dir(&root)
        .arg("serve")
        .arg("--manifest")
        .arg(manifest)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start stt-host");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut base, mut admin) = (None, None);
    while base.is_none() {
        let Some(Ok(line)) = lines.next() else {
            panic!("stt-host exited before listening: {}", std::fs::read_to_string(&log).unwrap_or_default())
        };
        if let Some(a) = line.strip_prefix("admin on ") {
            admin = Some(a.trim().to_string());
        } else if let Some(b) = line.strip_prefix("listening on ") {
            base = Some(b.trim().to_string());
        }
    }
    Host { child, base: base.unwrap_or_default(), admin: admin.expect("the admin line comes first"), log }
}

/// The project's spin.toml, with extra environment (e.g. `SPIN_VARIABLE_*` overrides).
pub fn start_with(env: &[(&str, &str)]) -> Host {
    start_host(&workspace().join("spin.toml"), &[], env)
}

pub fn start() -> Host {
    start_with(&[])
}

/// A manifest serving the function on `/...` and the misbehaving test component on `/hog/...`.
pub fn manifest_with_hog() -> PathBuf {
    let hog = std::env::var_os("STT_HOG_WASM")
        .map(PathBuf::from)
        .expect("STT_HOG_WASM (set by `make test`): the stt-test-hog component built for wasm32-wasip2");
    assert!(hog.is_file(), "{}: run `make test-components`", hog.display());
    let root = workspace().canonicalize().expect("workspace");
    let text = format!(
        r#"spin_manifest_version = 2
[application]
name = "stt-host-fault-tests"
[[trigger.http]]
route = "/..."
component = "stt"
[[trigger.http]]
route = "/hog/..."
component = "hog"
[component.stt]
source = "{function}"
files = [{{ source = "{models}", destination = "/models" }}]
[component.stt.variables]
model_dir = "/models/tiny.en"
[component.hog]
source = "{hog}"
"#,
        function = root.join("build/stt_function.wasm").display(),
        models = models_dir().display(),
        hog = hog.display(),
    );
    let path = std::env::temp_dir().join(format!("stt-hog-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write manifest");
    path
}

pub fn multipart(file: &[u8], format: &str) -> (String, Vec<u8>) {
    let b = "----stt-host-test";
    let mut body = format!("--{b}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--{b}\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\n{format}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"jfk.flac\"\r\n\r\n").into_bytes();
    body.extend_from_slice(file);
    body.extend(format!("\r\n--{b}--\r\n").into_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

/// A client that returns 4xx/5xx responses instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// POSTs a file of the data folder to /transcribe as `content_type`; the status and body.
pub fn post_audio(agent: &ureq::Agent, host: &Host, file: &str, content_type: &str) -> (u16, String) {
    let bytes = std::fs::read(data_dir().join(file)).expect("audio file");
    let mut r = agent
        .post(format!("{}/transcribe", host.base))
        .header("content-type", content_type)
        .send(&bytes[..])
        .expect("POST /transcribe");
    (r.status().as_u16(), r.body_mut().read_to_string().expect("body"))
}

/// POSTs jfk.flac to /transcribe; the status and body.
pub fn transcribe_jfk(agent: &ureq::Agent, host: &Host) -> (u16, String) {
    post_audio(agent, host, "jfk.flac", "audio/flac")
}

/// After whatever came before, a good request still succeeds.
pub fn assert_still_serves(agent: &ureq::Agent, host: &Host) {
    let (status, body) = post_audio(agent, host, "dev/ps_goforward.wav", "audio/wav");
    assert_eq!(status, 200);
    assert!(body.to_lowercase().contains("go forward"));
}

/// The OpenAI error object of a JSON error body, checked for its shape.
pub fn openai_error(body: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    let e = v["error"].clone();
    assert!(
        e["message"].is_string() && e["type"].is_string() && e.get("param").is_some() && e["code"].is_string(),
        "{v}"
    );
    e
}
