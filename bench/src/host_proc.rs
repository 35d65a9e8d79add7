//! Starting `stt-host serve` for a benchmark: on 127.0.0.1 ports chosen by the OS, optionally
//! confined to some CPUs (taskset), with its CPU time read from /proc.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

pub struct HostProc {
    child: Child,
    pub base: String,
    pub admin: String,
}

impl Drop for HostProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HostProc {
    /// Starts the host on `manifest` with `args`; `cpus` = "0-1" confines it with taskset.
    pub fn start(
        binary: &Path,
        manifest: &Path,
        args: &[String],
        cpus: Option<&str>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut cmd = match cpus {
            Some(list) => {
                let mut c = Command::new("taskset");
                c.args(["-c", list]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let mut child = cmd
            .arg("serve")
            .arg("--manifest")
            .arg(manifest)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(args)
            .env("STT_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut base, mut admin) = (None, None);
        while base.is_none() {
            let line = lines.next().context("stt-host exited before listening")??;
            if let Some(a) = line.strip_prefix("admin on ") {
                admin = Some(a.trim().to_string());
            } else if let Some(b) = line.strip_prefix("listening on ") {
                base = Some(b.trim().to_string());
            }
        }
        Ok(Self { child, base: base.unwrap_or_default(), admin: admin.context("no admin line")? })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds the process has used (user + system), from /proc.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (ticks(11) + ticks(12)) / 100.0
    }
}

/// One value of a Prometheus text exposition (first series whose name and labels start so).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
}

pub fn scrape(admin: &str) -> String {
    ureq::get(format!("{admin}/metrics"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default()
}
