//! One-decode HLS ladder against the same rungs made by separate ffmpeg
//! runs (issue 16): the CPU time (user + sys of the ffmpeg children) and
//! the wall time of (a) the ladder preset's real one-run command, built by
//! the product's own `encode_args` as the encoder builds it, and (b) one
//! run per rung plus one for the sound, same settings; beside them the seed
//! MP4 preset on the same source, and the ladder's extras (download MP4,
//! storyboard) made from (a)'s folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use videoshare::encoder::ffmpeg::{Audio, Inputs, encode_args};
use videoshare::encoder::preset::{HLS_LADDER_PRESET, Preset, Presets, SEED_PRESET, SourcePicture};
use videoshare::media::ffmpeg_args::FfmpegArgs;
use videoshare::media::synthetic::{ClipSpec, write_clip};

use crate::support::{Row, children_cpu_secs};

/// Wall seconds and CPU seconds (of the children) of some work.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    wall: f64,
    cpu: f64,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, other: Cost) -> Cost {
        Cost {
            wall: self.wall + other.wall,
            cpu: self.cpu + other.cpu,
        }
    }
}

/// Runs ffmpeg with `args` to the end and what it cost.
fn ffmpeg(args: &FfmpegArgs) -> Cost {
    let (cpu, started) = (children_cpu_secs(), Instant::now());
    let output = Command::new("ffmpeg")
        .args(args.as_slice())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .expect("run ffmpeg");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Cost {
        wall: started.elapsed().as_secs_f64(),
        cpu: children_cpu_secs() - cpu,
    }
}

/// A fresh, empty folder `name` in `work`.
fn fresh(work: &Path, name: &str) -> PathBuf {
    let folder = work.join(name);
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).expect("folder");
    folder
}

/// Encodes `source` into `output` with `preset` as the encoder does.
fn encode(source: &Path, picture: SourcePicture, output: &Path, preset: &Preset) -> Cost {
    let inputs = Inputs {
        source,
        audio: Audio::Source,
        trim: None,
        picture: Some(picture),
    };
    ffmpeg(&encode_args(&inputs, &[(output, preset)]))
}

/// The ladder preset cut down to one rung (same codec, speed, keyframes
/// and segments), without sound.
fn one_rung(ladder: &Preset, n: usize, picture: &SourcePicture) -> Preset {
    let mut preset = ladder.clone();
    let mut spec = ladder.ladder.clone().expect("a ladder");
    let rung = spec.rungs_for(picture)[n];
    spec.rungs = vec![rung];
    preset.ladder = Some(spec);
    if let Some(video) = preset.video.as_mut() {
        (video.width, video.height, video.bitrate_kbps) =
            (rung.width, rung.height, rung.bitrate_kbps);
    }
    preset.audio = None;
    preset
}

/// The sound rendition alone: the ladder's audio settings, HLS fMP4
/// segments of the ladder's length.
fn audio_only(source: &Path, ladder: &Preset, folder: &Path) -> Cost {
    let audio = ladder.audio.as_ref().expect("ladder sound");
    let seconds = ladder.ladder.as_ref().expect("ladder").segment_seconds;
    let args = FfmpegArgs::new()
        .with(["-y"])
        .media_input(Vec::<&str>::new(), source)
        .with(["-map", "0:a:0", "-vn", "-c:a", audio.codec.as_str()])
        .with(["-b:a", &format!("{}k", audio.bitrate_kbps), "-ac", "2"])
        .with(["-f", "hls", "-hls_time", &seconds.to_string()])
        .with(["-hls_playlist_type", "event", "-hls_segment_type", "fmp4"])
        .with(["-hls_segment_filename"])
        .mention(folder)
        .with([folder.join("seg%05d.m4s")])
        .output(&folder.join("index.m3u8"));
    ffmpeg(&args)
}

/// One round: the ladder in one run, the same rungs and sound in separate
/// runs, the seed MP4, and the ladder's extras.
struct Round {
    ladder: Cost,
    separate: Cost,
    seed: Cost,
    download: f64,
    storyboard: f64,
}

/// `ladder_first`: whether the one-run ladder goes before the separate
/// runs (alternated, so drift in the machine's load hits both).
async fn round(
    source: &Path,
    picture: SourcePicture,
    work: &Path,
    duration: f64,
    ladder_first: bool,
) -> Round {
    let presets = Presets::builtin();
    let ladder_preset = presets.get(HLS_LADDER_PRESET).expect("ladder preset");
    let seed_preset = presets.get(SEED_PRESET).expect("seed preset");

    let folder = fresh(work, "ladder");
    let one_run = || encode(source, picture, &folder, ladder_preset);
    let separate_runs = || {
        let rungs = ladder_preset
            .ladder
            .as_ref()
            .expect("ladder")
            .rungs_for(&picture)
            .len();
        let mut cost = Cost::default();
        for n in 0..rungs {
            let preset = one_rung(ladder_preset, n, &picture);
            let out = fresh(work, &format!("rung{n}"));
            cost = cost + encode(source, picture, &out, &preset);
        }
        cost + audio_only(source, ladder_preset, &fresh(work, "audio"))
    };
    let (ladder, separate) = if ladder_first {
        let ladder = one_run();
        (ladder, separate_runs())
    } else {
        let separate = separate_runs();
        (one_run(), separate)
    };

    let seed = encode(source, picture, &work.join("seed.mp4"), seed_preset);

    // ffmpeg's own master is hidden: publish ours, as the encoder does.
    let published = videoshare::encoder::live_folder::publish_if_playable(&folder);
    assert!(
        published.expect("the ladder's folder"),
        "every rung has a segment"
    );
    let started = Instant::now();
    videoshare::media::download::write_download_mp4(&folder)
        .await
        .expect("download mp4");
    let download = started.elapsed().as_secs_f64();
    let started = Instant::now();
    videoshare::media::storyboard::write_storyboard(&folder, duration)
        .await
        .expect("storyboard");
    let storyboard = started.elapsed().as_secs_f64();
    Round {
        ladder,
        separate,
        seed,
        download,
        storyboard,
    }
}

/// `camera_like`: the source as a camera writes H.264 (costly to decode),
/// else x264 `ultrafast` (the cheapest H.264 to decode).
pub async fn run(runs: usize, seconds: u32, width: u32, height: u32, camera_like: bool) -> Row {
    let size = format!("{width}x{height}");
    let work = tempfile::tempdir_in(crate::support::bench_dir()).expect("tempdir");
    let source = work.path().join("source.mp4");
    eprintln!("generating a {seconds} s {size} clip…");
    let spec = ClipSpec {
        frame_rate: 30,
        camera_like,
        ..ClipSpec::new(seconds, width, height)
    };
    write_clip(&source, spec).expect("ffmpeg generates the clip");
    let picture = SourcePicture {
        width,
        height,
        frame_rate: Some(30.0),
        has_audio: true,
    };
    let kind = if camera_like {
        "camera-like (x264 medium, 12 Mbit/s at 1080p)"
    } else {
        "x264 ultrafast"
    };
    println!(
        "HLS ladder: {seconds} s {size} testsrc2 + sine, {kind} → one-run ladder vs separate runs (CPU = user + sys of ffmpeg)"
    );
    println!(
        "{:>4}  {:>14}  {:>16}  {:>9}  {:>12}  {:>14}  {:>12}  {:>9}  {:>11}",
        "run",
        "ladder CPU (s)",
        "separate CPU (s)",
        "CPU ratio",
        "ladder wall",
        "separate wall",
        "seed wall",
        "download",
        "storyboard"
    );
    let mut rounds = Vec::new();
    for run in 1..=runs {
        let r = round(
            &source,
            picture,
            work.path(),
            f64::from(seconds),
            run % 2 == 1,
        )
        .await;
        println!(
            "{run:>4}  {:>14.2}  {:>16.2}  {:>9.3}  {:>10.2} s  {:>12.2} s  {:>10.2} s  {:>7.2} s  {:>9.2} s",
            r.ladder.cpu,
            r.separate.cpu,
            r.ladder.cpu / r.separate.cpu,
            r.ladder.wall,
            r.separate.wall,
            r.seed.wall,
            r.download,
            r.storyboard
        );
        rounds.push(r);
    }
    // Totals over the runs, so one disturbed run weighs by its length.
    let total = |f: &dyn Fn(&Round) -> f64| rounds.iter().map(f).sum::<f64>();
    let each = |f: &dyn Fn(&Round) -> f64| {
        let list: Vec<String> = rounds.iter().map(|r| format!("{:.1}", f(r))).collect();
        list.join("/")
    };
    let ratio = total(&|r| r.ladder.cpu) / total(&|r| r.separate.cpu);
    let wall_ratio = total(&|r| r.ladder.wall) / total(&|r| r.separate.wall);
    let (low, high) = rounds.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| {
        let ratio = r.ladder.cpu / r.separate.cpu;
        (lo.min(ratio), hi.max(ratio))
    });
    let n = rounds.len().max(1) as f64;
    let (ladder_cpu, separate_cpu) = (total(&|r| r.ladder.cpu) / n, total(&|r| r.separate.cpu) / n);
    let (download, storyboard) = (total(&|r| r.download) / n, total(&|r| r.storyboard) / n);
    let walls = format!(
        "wall ladder {} s, separate {} s, seed MP4 {} s",
        each(&|r| r.ladder.wall),
        each(&|r| r.separate.wall),
        each(&|r| r.seed.wall)
    );
    println!(
        "CPU ratio ladder / separate (totals): {ratio:.3} (target ≤ 0.8; runs {low:.3}–{high:.3}); wall ratio {wall_ratio:.3}; {walls}"
    );
    Row {
        measurement: if camera_like {
            "HLS ladder, one decode (camera-like source)"
        } else {
            "HLS ladder, one decode (ultrafast source)"
        },
        result: format!(
            "CPU {ladder_cpu:.1} s vs {separate_cpu:.1} s in separate runs = {ratio:.2}× (runs {low:.2}–{high:.2}); {walls}; then download MP4 {download:.2} s, storyboard {storyboard:.2} s ({seconds} s {size}, {runs} runs)"
        ),
        target: "CPU ≤ 0.8× separate runs",
        met: Some(ratio <= 0.8),
        details: serde_json::json!({
            "clip": { "seconds": seconds, "size": size, "fps": 30, "encoding": kind },
            "runs": rounds.iter().map(|r| serde_json::json!({
                "ladder": { "wall_s": r.ladder.wall, "cpu_s": r.ladder.cpu },
                "separate": { "wall_s": r.separate.wall, "cpu_s": r.separate.cpu },
                "seed_mp4": { "wall_s": r.seed.wall, "cpu_s": r.seed.cpu },
                "download_mp4_s": r.download,
                "storyboard_s": r.storyboard,
            })).collect::<Vec<_>>(),
            "cpu_ratio_of_totals": ratio,
            "wall_ratio_of_totals": wall_ratio,
        }),
    }
}
