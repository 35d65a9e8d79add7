//! `stt-bench long`: one long recording (whole dev clips joined, ≈ 10 min) through `stt-host`
//! serving the project's spin.toml, on 1 and 2 slots: transcribed whole in one instance (the
//! sequential path, Whisper's long-form loop) and cut into chunks the function sends to the
//! host's own slots (fan-out). Latency, WER against the clips' references, CPU used, and the time
//! to the first streamed delta; the report extrapolates latency to more slots and pods.

use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::Paths;
use crate::host_proc::{self, HostProc, metric, scrape};
use crate::load::write_report;
use crate::plot::{self, Series};

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    paths: Paths,
    /// Minutes of joined dev clips (whole clips, cycled).
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Slot counts to run on.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    slots: Vec<usize>,
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    #[arg(long)]
    host: Option<PathBuf>,
    #[arg(long, default_value = "docs/benchmarks/long_audio_report.md")]
    out: PathBuf,
}

/// The recording and what was said in it.
struct Recording {
    wav: Vec<u8>,
    seconds: f64,
    reference: String,
    words: usize,
}

/// Whole dev clips, in the manifest's order and cycled, until `minutes` are reached; 16-bit WAV.
fn recording(data: &Path, minutes: f64) -> anyhow::Result<Recording> {
    let rows = stt_testkit::paths::data_manifest("dev");
    anyhow::ensure!(!rows.is_empty(), "no dev clips");
    let (mut pcm, mut reference) = (Vec::<f32>::new(), Vec::new());
    while (pcm.len() as f64) < minutes * 60.0 * 16_000.0 {
        for row in &rows {
            let (Some(file), Some(text)) = (row.get("file"), row.get("reference")) else {
                continue;
            };
            pcm.extend(stt_testkit::wer::join_clips(&data.join("dev"), &[file.as_str()])?);
            reference.push(text.clone());
            if (pcm.len() as f64) >= minutes * 60.0 * 16_000.0 {
                break;
            }
        }
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut out, spec)?;
    for &s in &pcm {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)?;
    }
    w.finalize()?;
    let reference = reference.join(" ");
    let words = stt_testkit::wer::normalize_english(&reference).len();
    Ok(Recording { wav: out.into_inner(), seconds: pcm.len() as f64 / 16_000.0, reference, words })
}

/// How the recording is transcribed.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    Whole,
    Chunks,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Whole => "sequential (whole, one instance)",
            Way::Chunks => "fan-out (chunks to the slots)",
        }
    }
}

struct Run {
    way: Way,
    slots: usize,
    latency_s: f64,
    first_delta_s: f64,
    wer: f64,
    /// Words in the transcript (the reference has `Recording::words`).
    words: usize,
    cpu_s: f64,
    /// CPU of the instance that answered (`x-stt-cpu-ms`): for fan-out, the parent's part.
    own_cpu_s: f64,
    chunks: String,
}

fn start(a: &Args, slots: usize, way: Way) -> anyhow::Result<HostProc> {
    let above = match way {
        Way::Whole => "100000",
        Way::Chunks => "60",
    };
    host_proc::start(
        &crate::sibling_binary(a.host.as_deref(), "stt-host")?,
        &a.manifest,
        &["--slots".into(), slots.to_string(), "--cpu-budget-per-audio-second".into(), "4".into()],
        None,
        &[("SPIN_VARIABLE_CHUNK_ABOVE_SECONDS", above)],
    )
}

/// Seconds until the first `transcript.text.delta` of a streamed request (the request is then
/// dropped, which cancels its instances).
fn first_delta(agent: &ureq::Agent, base: &str, rec: &Recording) -> anyhow::Result<f64> {
    let (ct, body) =
        stt_testkit::http::multipart(&[("stream", "true")], Some(("long.wav", &rec.wav)));
    let t0 = Instant::now();
    let mut r = agent
        .post(format!("{base}/v1/audio/transcriptions"))
        .header("content-type", &ct)
        .send(&body[..])?;
    if r.status() != 200 {
        bail!("stream: HTTP {}", r.status());
    }
    for line in std::io::BufReader::new(r.body_mut().as_reader()).lines() {
        if line?.contains("transcript.text.delta") {
            return Ok(t0.elapsed().as_secs_f64());
        }
    }
    bail!("the stream ended without a delta")
}

fn measure(a: &Args, rec: &Recording, slots: usize, way: Way) -> anyhow::Result<Run> {
    let host = start(a, slots, way)?;
    let agent = stt_testkit::http::agent();
    let admin = host.admin().to_string();
    let cpu0 = metric(&scrape(&admin), "stt_instance_cpu_seconds_total").unwrap_or(0.0);
    let (ct, body) = stt_testkit::http::multipart(&[], Some(("long.wav", &rec.wav)));
    let t0 = Instant::now();
    let mut r = agent
        .post(format!("{}/v1/audio/transcriptions", host.base))
        .header("content-type", &ct)
        .send(&body[..])?;
    let latency_s = t0.elapsed().as_secs_f64();
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let chunks = header("x-stt-chunks").unwrap_or_else(|| "-".into());
    let own_cpu_s =
        header("x-stt-cpu-ms").and_then(|v| v.parse::<f64>().ok()).map_or(f64::NAN, |ms| ms / 1e3);
    let text = r.body_mut().read_to_string()?;
    if r.status() != 200 {
        bail!("HTTP {}: {text}", r.status());
    }
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let hyp = v["text"].as_str().context("text")?;
    let (errors, words) = stt_testkit::wer::corpus_wer([(rec.reference.as_str(), hyp)]);
    // Let the instance finish tearing down before its CPU is read.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let cpu_s = metric(&scrape(&admin), "stt_instance_cpu_seconds_total").unwrap_or(0.0) - cpu0;
    let first_delta_s = first_delta(&agent, &host.base, rec)?;
    Ok(Run {
        way,
        slots,
        latency_s,
        first_delta_s,
        wer: 100.0 * errors as f64 / words.max(1) as f64,
        words: stt_testkit::wer::normalize_english(hyp).len(),
        cpu_s,
        own_cpu_s,
        chunks,
    })
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let rec = recording(&a.paths.data, a.minutes)?;
    let mut runs = Vec::new();
    for &slots in &a.slots {
        for way in [Way::Whole, Way::Chunks] {
            eprintln!("{} on {slots} slot(s)…", way.name());
            runs.push(measure(a, &rec, slots, way)?);
        }
    }
    let best = |way: Way| {
        runs.iter().filter(|r| r.way == way).map(|r| r.latency_s).fold(f64::INFINITY, f64::min)
    };
    let sequential = best(Way::Whole);
    let fan_one = runs.iter().find(|r| r.way == Way::Chunks && r.slots == 1).map(|r| r.latency_s);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Long audio: sequential vs fan-out\n\n`stt-bench long`, one run on this machine: a \
         {:.1} min recording of whole dev clips (every clip of data/dev/ in order, cycled, half a \
         second apart; 16 kHz 16-bit WAV; {} reference words), tiny.en int8, through \
         `stt-host` serving spin.toml on 127.0.0.1. *Sequential*: the whole file in one instance \
         (Whisper's long-form loop; `chunk_above_seconds` above its length). *Fan-out*: cut at \
         pauses into chunks of at most 30 s, each sent by the function to the app itself and \
         run in the host's slots (`chunk_above_seconds=60`). WER is against the clips' \
         references (the tests' normaliser); CPU is `stt_instance_cpu_seconds_total` over the \
         request (every instance); the first delta is a `stream=true` request of the same file. \
         \"× sequential\" divides by the faster sequential run; \"× fan-out on 1 slot\" by \
         the same chunks on one slot (the same work: same chunks, same tokens).\n",
        rec.seconds / 60.0,
        rec.words
    );
    let _ = writeln!(
        md,
        "| path | slots | latency s | × sequential | × fan-out on 1 slot | first delta s | WER % | words | CPU s | chunks (`x-stt-chunks`) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for r in &runs {
        let same = match (r.way, fan_one) {
            (Way::Chunks, Some(one)) => format!("{:.2}", r.latency_s / one),
            _ => String::new(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} | {:.2} | {same} | {:.2} | {:.2} | {} | {:.1} | {} |",
            r.way.name(),
            r.slots,
            r.latency_s,
            r.latency_s / sequential,
            r.first_delta_s,
            r.wer,
            r.words,
            r.cpu_s,
            r.chunks
        );
    }
    // Latency with more slots (or pods behind the Service): the parent's own work (decoding,
    // voice activity detection) plus the chunks in waves of `slots`, from the one-slot run.
    let fan = |slots: usize| {
        runs.iter().find(|r| r.way == Way::Chunks && r.slots == slots).map(|r| r.latency_s)
    };
    let whole_cpu = runs.iter().find(|r| r.way == Way::Whole).map_or(f64::NAN, |r| r.cpu_s);
    let one_slot = runs.iter().find(|r| r.way == Way::Chunks && r.slots == 1);
    let count = one_slot.and_then(|r| r.chunks.split(';').next()?.trim().parse::<usize>().ok());
    if let (Some(one), Some(count)) = (one_slot, count) {
        // On one slot the parent's own work (decoding, voice activity detection, language) comes
        // first and the chunks then run back to back: the rest of the latency, shared out.
        let parent = one.own_cpu_s;
        let per_chunk = (one.latency_s - parent) / count as f64;
        let _ = writeln!(
            md,
            "\nFan-out used {:.1} s of CPU in all against the sequential path's {:.1} s: about as \
             many 30 s windows, but the sequential loop skips speech (compare the words) that the \
             chunks transcribe, plus voice activity detection. From the one-slot run \
             ({count} chunks, ≈ {per_chunk:.1} s each after ≈ {parent:.1} s in the parent), \
             latency with `n` slots in all (slots per pod × pods behind the Service) is about \
             parent + ⌈{count} / n⌉ × chunk:\n",
            one.cpu_s, whole_cpu
        );
        let _ = writeln!(md, "| slots in all | latency s (model) | measured s |\n|---:|---:|---:|");
        for n in [1usize, 2, 4, 8, 16, 32] {
            let model = parent + (count.div_ceil(n)) as f64 * per_chunk;
            let measured = fan(n).map_or("".into(), |m| format!("{m:.1}"));
            let _ = writeln!(md, "| {n} | {model:.1} | {measured} |");
        }
        let svg = a.out.with_file_name("long_audio_latency.svg");
        let whole = Series {
            name: "sequential (one instance)".into(),
            points: [1.0, 32.0].iter().map(|&n| (n, sequential)).collect(),
        };
        let modelled = Series {
            name: "fan-out, modelled".into(),
            points: [1usize, 2, 4, 8, 16, 32]
                .iter()
                .map(|&n| (n as f64, parent + count.div_ceil(n) as f64 * per_chunk))
                .collect(),
        };
        let measured = Series {
            name: "fan-out, measured".into(),
            points: runs
                .iter()
                .filter(|r| r.way == Way::Chunks)
                .map(|r| (r.slots as f64, r.latency_s))
                .collect(),
        };
        plot::lines(
            &svg,
            &format!("{:.1} min of speech: latency by slots", rec.seconds / 60.0),
            "slots in all (slots per pod × pods)",
            "latency, s",
            &[whole, modelled, measured],
        )?;
        let _ = writeln!(md, "\n![latency by slots](long_audio_latency.svg)");
    }
    write_report(&a.out, &md)?;
    print!("{md}");
    Ok(())
}
