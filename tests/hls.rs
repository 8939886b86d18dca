//! The HLS ladder preset end to end: a job through Carbon, then the folder
//! it leaves is checked as a player would meet it — playlists against the
//! RFC 8216 rules that matter here, every rung read by ffprobe, segments no
//! longer than the target duration, each starting on a keyframe, the same
//! boundaries in every rung. A ladder is written live into its destination:
//! playable (our master published) while it still encodes, removed whole
//! when stopped, cleaned and redone after the encoder is killed.
//!
//! The product reads local media only (no `hls` demuxer, see
//! `videoshare::media::inputs`); these tests run ffprobe themselves, with
//! their own whitelist, to read what was produced.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{make_clip, spawn_app, spawn_app_with, wait_completed, wait_finished};
use serde_json::Value;
use videoshare::carbon::message::{Command as JobCommand, FileCopy, JobQueue};
use videoshare::carbon::{Client, ClientError, Guid, JobStatus};
use videoshare::encoder::preset::HLS_LADDER_PRESET;
use videoshare::media::synthetic::{ClipSpec, write_clip};

/// The ladder's segment length, as `presets/hls-ladder.toml` says.
const SEGMENT_SECS: f64 = 4.0;

/// One media playlist, as read by [`media_playlist`].
#[derive(Debug)]
struct MediaPlaylist {
    target_duration: u64,
    playlist_type: Option<String>,
    independent: bool,
    map_uri: Option<String>,
    /// `(EXTINF duration, URI)` in order.
    segments: Vec<(f64, String)>,
    ended: bool,
}

/// A playlist's text and its non-blank lines, trimmed; `#EXTM3U` must be
/// the first (RFC 8216 4.3.1.1).
fn playlist_lines(path: &Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("read the playlist");
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.first().map(String::as_str), Some("#EXTM3U"), "{text}");
    (text, lines)
}

/// Reads a media playlist and checks the RFC 8216 rules a player relies
/// on: `#EXTM3U` first; one `EXT-X-TARGETDURATION`, at least every
/// `EXTINF` rounded to the nearest integer (4.3.3.1); every `EXTINF`
/// followed by its URI; `EXT-X-MAP` before the first segment for fMP4
/// (4.3.2.5); `EXT-X-ENDLIST` last, once (4.3.3.4).
fn media_playlist(path: &Path) -> MediaPlaylist {
    let (text, lines) = playlist_lines(path);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut playlist = MediaPlaylist {
        target_duration: 0,
        playlist_type: None,
        independent: false,
        map_uri: None,
        segments: Vec::new(),
        ended: false,
    };
    let mut targets = 0;
    let mut pending: Option<f64> = None;
    for (n, line) in lines.iter().enumerate().skip(1) {
        assert!(!playlist.ended, "nothing may follow EXT-X-ENDLIST: {text}");
        if let Some(value) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            targets += 1;
            playlist.target_duration = value.parse().expect("an integer target duration");
        } else if let Some(value) = line.strip_prefix("#EXT-X-PLAYLIST-TYPE:") {
            playlist.playlist_type = Some(value.to_owned());
        } else if *line == "#EXT-X-INDEPENDENT-SEGMENTS" {
            playlist.independent = true;
        } else if let Some(value) = line.strip_prefix("#EXT-X-MAP:") {
            assert!(playlist.segments.is_empty(), "EXT-X-MAP after a segment");
            playlist.map_uri = attribute(value, "URI");
        } else if let Some(value) = line.strip_prefix("#EXTINF:") {
            let duration = value.split(',').next().unwrap_or_default();
            pending = Some(duration.parse().expect("an EXTINF duration"));
        } else if *line == "#EXT-X-ENDLIST" {
            assert_eq!(n + 1, lines.len(), "EXT-X-ENDLIST is last: {text}");
            playlist.ended = true;
        } else if !line.starts_with('#') {
            let duration = pending.take().expect("a URI follows its EXTINF");
            playlist.segments.push((duration, (*line).to_owned()));
        }
    }
    assert_eq!(targets, 1, "one EXT-X-TARGETDURATION: {text}");
    assert!(pending.is_none(), "an EXTINF without its URI: {text}");
    for (duration, uri) in &playlist.segments {
        assert!(
            duration.round() as u64 <= playlist.target_duration,
            "{uri} lasts {duration} s, over the target duration: {text}"
        );
    }
    playlist
}

/// An attribute's value in an attribute list (`URI="a.mp4",BYTERANGE=…`),
/// quotes removed. Quoted values here hold no commas except `CODECS`,
/// which is read whole.
fn attribute(list: &str, name: &str) -> Option<String> {
    let start = list.find(&format!("{name}="))? + name.len() + 1;
    let rest = &list[start..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next()?,
        None => rest.split(',').next()?,
    };
    Some(value.to_owned())
}

/// One `#EXT-X-STREAM-INF` of a master playlist: its attributes and URI.
type Variant = (String, String);

/// Reads a master playlist: `#EXTM3U` first, every `EXT-X-STREAM-INF`
/// followed by its URI. Returns the variants and the `EXT-X-MEDIA` lines.
fn master_playlist(path: &Path) -> (Vec<Variant>, Vec<String>) {
    let (text, lines) = playlist_lines(path);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (mut variants, mut media) = (Vec::new(), Vec::new());
    let mut pending: Option<&str> = None;
    for line in &lines[1..] {
        if let Some(attributes) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            assert!(pending.is_none(), "a STREAM-INF without its URI: {text}");
            pending = Some(attributes);
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-MEDIA:") {
            media.push(attributes.to_owned());
        } else if !line.starts_with('#') {
            let attributes = pending.take().expect("a URI follows its STREAM-INF");
            variants.push((attributes.to_owned(), (*line).to_owned()));
        }
    }
    assert!(pending.is_none(), "a STREAM-INF without its URI: {text}");
    (variants, media)
}

/// Checks a finished ladder folder: the master says
/// `EXT-X-INDEPENDENT-SEGMENTS` right after its header, and nothing of the
/// encode is left (no `.encoding` marker, no ffmpeg master, no `*.tmp`).
fn assert_finished(folder: &Path) {
    let (text, lines) = playlist_lines(&folder.join("master.m3u8"));
    assert_eq!(
        lines.get(1..3),
        Some(
            &[
                "#EXT-X-VERSION:7".to_owned(),
                "#EXT-X-INDEPENDENT-SEGMENTS".to_owned()
            ][..]
        ),
        "{text}"
    );
    let left = files_under(folder)
        .into_iter()
        .filter(|f| {
            let name = f.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with('.') || name.ends_with(".tmp")
        })
        .collect::<Vec<_>>();
    assert!(left.is_empty(), "left after the encode: {left:?}");
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list the folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// ffprobe's JSON about `input`, read through the `hls` demuxer when it
/// is a playlist: this test's own whitelist (local files only), not the
/// product's.
fn ffprobe(input: &Path, what: &[&str]) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-protocol_whitelist", "file"])
        .args(["-print_format", "json"])
        .args(what)
        .arg(input)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

/// Whether the first video packet of `init` + `segment` (one fragment, as
/// a player appends it) is a keyframe.
fn starts_on_keyframe(init: &Path, segment: &Path, scratch: &Path) -> bool {
    let mut bytes = std::fs::read(init).expect("read the init segment");
    bytes.extend(std::fs::read(segment).expect("read the segment"));
    std::fs::write(scratch, bytes).expect("write the fragment");
    let packets = ffprobe(
        scratch,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
            "-read_intervals",
            "%+#1",
        ],
    );
    packets["packets"][0]["flags"]
        .as_str()
        .is_some_and(|f| f.contains('K'))
}

/// Checks one rendition folder of a ladder whose source lasts `secs`: its
/// playlist (see [`media_playlist`]) is EVENT, ended, with a 4 s target
/// and an init segment; ffprobe reads it (a `height`-line H.264 picture, or
/// AAC sound when `height` is `None`); every video segment lasts at most
/// 4 s and starts on a keyframe. Returns the segment durations.
fn check_rung(folder: &Path, rung: &str, height: Option<u64>, secs: f64) -> Vec<String> {
    let playlist_path = folder.join(rung).join("index.m3u8");
    let playlist = media_playlist(&playlist_path);
    assert_eq!(playlist.playlist_type.as_deref(), Some("EVENT"), "{rung}");
    assert!(playlist.ended, "{rung} ends with EXT-X-ENDLIST");
    assert_eq!(playlist.target_duration, SEGMENT_SECS as u64, "{rung}");
    let init = folder
        .join(rung)
        .join(playlist.map_uri.as_deref().expect("EXT-X-MAP for fMP4"));
    assert!(init.is_file(), "{}", init.display());
    let total: f64 = playlist.segments.iter().map(|s| s.0).sum();
    assert!((total - secs).abs() < 0.2, "{rung} lasts {total} s");

    let probed = ffprobe(&playlist_path, &["-show_streams"]);
    let kind = if height.is_some() { "video" } else { "audio" };
    let stream = probed["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == kind))
        .unwrap_or_else(|| panic!("ffprobe finds the {rung} {kind}"))
        .clone();
    let durations = playlist
        .segments
        .iter()
        .map(|s| format!("{:.2}", s.0))
        .collect();
    let Some(height) = height else {
        assert_eq!(stream["codec_name"], "aac");
        return durations;
    };
    assert!(playlist.independent, "{rung}: EXT-X-INDEPENDENT-SEGMENTS");
    assert_eq!(stream["codec_name"], "h264");
    assert_eq!(stream["height"], height);
    let scratch = tempfile::tempdir().expect("tempdir");
    for (n, (duration, uri)) in playlist.segments.iter().enumerate() {
        assert!(*duration <= SEGMENT_SECS + 0.01, "{rung}/{uri}: {duration}");
        let segment = folder.join(rung).join(uri);
        let fragment = scratch.path().join(format!("{n}.mp4"));
        assert!(
            starts_on_keyframe(&init, &segment, &fragment),
            "{rung}/{uri} starts on a keyframe"
        );
    }
    durations
}

/// Submits `clip` to the ladder preset, waits for it to complete and
/// returns the folder its target file (the master playlist) is in.
async fn encode_ladder(client: &Client, clip: &Path, streams: &Path) -> PathBuf {
    let job = JobQueue::single(
        &clip.to_string_lossy(),
        HLS_LADDER_PRESET,
        &streams.to_string_lossy(),
    );
    let guid = client.queue(job).await.expect("queued");
    let done = wait_completed(client, guid).await;
    assert_eq!(done.status, JobStatus::Completed);
    let info = client.info(guid).await.expect("info");
    let target = info.destinations[0]
        .target_files
        .first()
        .map(PathBuf::from)
        .expect("a target file");
    assert!(target.ends_with("master.m3u8"), "names the master");
    target
        .parent()
        .map(Path::to_path_buf)
        .expect("in the ladder's folder")
}

#[tokio::test]
async fn a_ladder_job_writes_aligned_fmp4_rungs_and_a_master_playlist() {
    let app = spawn_app().await;
    let client = Client::new(app.carbon.to_string());
    let profiles = client.profiles().await.expect("profiles");
    let offered = profiles
        .iter()
        .find(|p| p.guid == HLS_LADDER_PRESET)
        .expect("ProfileList offers the ladder");
    assert_eq!(
        (offered.container.as_str(), offered.extension.as_str()),
        ("hls", "m3u8")
    );

    // 480 lines: the 480p and 360p rungs apply, 720p and 1080p do not.
    let clip = make_clip(&app.uploaded_dir(), "ladder.mp4", 6, 854, 480);
    let streams = app.streams_dir();
    let folder = encode_ladder(&client, &clip, &streams).await;
    assert_eq!(folder, streams.join("ladder"));
    let target = folder.join("master.m3u8");
    assert_eq!(common::names_in(&folder), FINISHED_TWO_RUNGS);

    let (variants, media) = master_playlist(&target);
    assert_finished(&folder);
    let audio_group = media
        .iter()
        .find(|m| attribute(m, "TYPE").as_deref() == Some("AUDIO"))
        .and_then(|m| attribute(m, "GROUP-ID"))
        .expect("an audio rendition group");
    let mut video_rungs = BTreeMap::new();
    for (attributes, uri) in &variants {
        let bandwidth: u64 = attribute(attributes, "BANDWIDTH")
            .and_then(|b| b.parse().ok())
            .expect("BANDWIDTH");
        assert!(bandwidth > 0, "{attributes}");
        let codecs = attribute(attributes, "CODECS").expect("CODECS");
        assert!(codecs.contains("mp4a.40.2"), "{codecs}");
        assert_eq!(attribute(attributes, "AUDIO"), Some(audio_group.clone()));
        // Video variants only: the audio rendition is not a variant of its own.
        let resolution = attribute(attributes, "RESOLUTION").expect("RESOLUTION");
        assert!(codecs.contains("avc1."), "{codecs}");
        video_rungs.insert(uri.clone(), resolution);
    }
    assert_eq!(
        video_rungs.into_iter().collect::<Vec<_>>(),
        [
            ("360p/index.m3u8".to_owned(), "640x360".to_owned()),
            ("480p/index.m3u8".to_owned(), "854x480".to_owned()),
        ]
    );

    let boundaries: Vec<Vec<String>> = [("480p", 480), ("360p", 360)]
        .into_iter()
        .map(|(rung, height)| check_rung(&folder, rung, Some(height), 6.0))
        .collect();
    check_rung(&folder, "audio", None, 6.0);
    assert_eq!(
        boundaries[0], boundaries[1],
        "segments aligned across rungs"
    );
    assert!(boundaries[0].len() >= 2, "6 s make two 4 s segments");

    // A copy of a folder output is not made yet: refused at JobQueue,
    // not half made (the master playlist alone) after the encode.
    let mut job = JobQueue::single(
        &clip.to_string_lossy(),
        HLS_LADDER_PRESET,
        &streams.to_string_lossy(),
    );
    job.destinations[0].copies.push(FileCopy {
        target_folder: streams.to_string_lossy().into_owned(),
        target_file: None,
        overwrite: false,
    });
    match client.queue(job).await {
        Err(ClientError::Refused(why)) => assert!(why.contains("FileCopy"), "{why}"),
        other => panic!("a copy of a ladder should be refused: {other:?}"),
    }
    // ffmpeg would read a `%` in the folder's name as a pattern (`b%d` →
    // `b0/…`, another folder): refused, naming the character.
    let mut job = JobQueue::single(
        &clip.to_string_lossy(),
        HLS_LADDER_PRESET,
        &streams.to_string_lossy(),
    );
    job.destinations[0].module_data.base_file_name = Some("b%d".into());
    match client.queue(job).await {
        Err(ClientError::Refused(why)) => {
            assert!(why.contains("'%'") && why.contains("b%d"), "{why}")
        }
        other => panic!("a '%' in a ladder's name should be refused: {other:?}"),
    }
    assert_eq!(
        common::names_in(&streams),
        ["ladder"],
        "nothing else written"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_phone_video_turned_a_quarter_gets_portrait_rungs() {
    let app = spawn_app().await;
    let client = Client::new(app.carbon.to_string());
    // Stored 320×240 landscape with a display rotation of 90°: shown (and
    // encoded, ffmpeg turning the frames) as 240×320.
    let stored = make_clip(&app.uploaded_dir(), "stored.mp4", 2, 320, 240);
    let clip = app.uploaded_dir().join("turned.mp4");
    let rotated = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&stored)
        .args(["-c", "copy", "-metadata:s:v:0", "rotate=90"])
        .arg(&clip)
        .status()
        .expect("ffmpeg");
    assert!(rotated.success(), "ffmpeg sets the rotation");
    let folder = encode_ladder(&client, &clip, &app.streams_dir()).await;
    let (variants, _) = master_playlist(&folder.join("master.m3u8"));
    let sizes: Vec<_> = variants
        .iter()
        .filter_map(|(attributes, _)| attribute(attributes, "RESOLUTION"))
        .collect();
    assert_eq!(
        sizes,
        ["240x320"],
        "portrait, the lowest rung, not enlarged"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_silent_source_smaller_than_every_rung_gets_one_rung_no_audio_group() {
    let app = spawn_app().await;
    let client = Client::new(app.carbon.to_string());
    // 320×240, no sound, 30 fps: the lowest rung alone, not upscaled.
    let clip = app.uploaded_dir().join("silent.mp4");
    let silent = ClipSpec {
        frame_rate: 30,
        sound: false,
        ..ClipSpec::new(5, 320, 240)
    };
    write_clip(&clip, silent).expect("a silent clip");

    let folder = encode_ladder(&client, &clip, &app.streams_dir()).await;
    assert_eq!(
        common::names_in(&folder),
        [
            "360p",
            "download.mp4",
            "master.m3u8",
            "storyboard-0.jpg",
            "storyboard.vtt"
        ]
    );
    // The download of a silent ladder is its one rung, without sound.
    let download = common::probe_streams(&folder.join("download.mp4"));
    assert_eq!(
        download,
        [("video".to_owned(), "h264".to_owned(), 320, 240)],
        "the silent ladder's download is its one rung"
    );
    assert_finished(&folder);
    let (variants, media) = master_playlist(&folder.join("master.m3u8"));
    assert!(media.is_empty(), "no audio group: {media:?}");
    let [(attributes, uri)] = variants.as_slice() else {
        panic!("one variant: {variants:?}");
    };
    assert_eq!(uri, "360p/index.m3u8");
    assert_eq!(
        attribute(attributes, "RESOLUTION").as_deref(),
        Some("320x240")
    );
    assert_eq!(attribute(attributes, "AUDIO"), None);
    let codecs = attribute(attributes, "CODECS").expect("CODECS");
    assert!(
        codecs.starts_with("avc1.") && !codecs.contains("mp4a"),
        "{codecs}"
    );
    let durations = check_rung(&folder, "360p", Some(240), 5.0);
    assert_eq!(durations, ["4.00", "1.00"], "a fixed 4 s GOP at 30 fps");
    app.stop().await;
}

/// A 12 s 854×480 clip queued through Carbon with the test's slow ladder
/// into the streams folder of an app of its own.
struct SlowLadder {
    _extra: tempfile::TempDir,
    app: common::TestApp,
    client: Client,
    streams: PathBuf,
    /// Where the ladder is written: `streams/<name>`.
    folder: PathBuf,
    guid: Guid,
}

impl SlowLadder {
    async fn queue(name: &str) -> SlowLadder {
        let extra = tempfile::tempdir().expect("tempdir");
        let config = common::slow_ladder_config(extra.path());
        let app = spawn_app_with(|args| args.encoder.config = Some(config.clone())).await;
        let client = Client::new(app.carbon.to_string());
        let clip = make_clip(&app.uploaded_dir(), &format!("{name}.mp4"), 12, 854, 480);
        let streams = app.streams_dir();
        let job = JobQueue::single(
            &clip.to_string_lossy(),
            common::SLOW_LADDER,
            &streams.to_string_lossy(),
        );
        let guid = client.queue(job).await.expect("queued");
        SlowLadder {
            _extra: extra,
            app,
            client,
            folder: streams.join(name),
            streams,
            guid,
        }
    }
}

/// What a finished ladder of two rungs with sound holds.
const FINISHED_TWO_RUNGS: [&str; 7] = [
    "360p",
    "480p",
    "audio",
    "download.mp4",
    "master.m3u8",
    "storyboard-0.jpg",
    "storyboard.vtt",
];

/// A job's target files, as `QueryInfo` reports them.
async fn target_files(client: &Client, guid: Guid) -> Vec<String> {
    let info = client.info(guid).await.expect("info");
    info.destinations[0].target_files.clone()
}

#[tokio::test]
async fn a_ladder_is_playable_while_it_encodes() {
    let SlowLadder {
        _extra,
        app,
        client,
        streams,
        folder,
        guid,
    } = SlowLadder::queue("live").await;
    let master = folder.join("master.m3u8");

    // Claimed and named before anything is playable.
    common::poll_until("the folder is claimed", || {
        folder.join(".encoding").is_file()
    })
    .await;
    let marker = std::fs::read_to_string(folder.join(".encoding")).expect("marker");
    assert_eq!(marker, guid.to_string());
    let named = master.to_string_lossy().into_owned();
    assert_eq!(
        target_files(&client, guid).await,
        std::slice::from_ref(&named)
    );

    // Playable: paused at once, so what is checked below holds still.
    common::poll_until("the master is published", || master.is_file()).await;
    let paused = client
        .command(guid, JobCommand::Pause)
        .await
        .expect("still encoding: the pause is accepted");
    assert!(!paused.status.is_terminal(), "{}", paused.status);
    let info = client.info(guid).await.expect("info");
    assert_ne!(info.job.status, JobStatus::Completed);
    assert_eq!(
        info.destinations[0].target_files,
        std::slice::from_ref(&named)
    );

    let (text, lines) = playlist_lines(&master);
    assert!(
        lines.iter().any(|l| l == "#EXT-X-INDEPENDENT-SEGMENTS"),
        "{text}"
    );
    let (variants, media) = master_playlist(&master);
    let mut playlists: Vec<String> = variants.iter().map(|(_, uri)| uri.clone()).collect();
    assert_eq!(playlists, ["480p/index.m3u8", "360p/index.m3u8"], "{text}");
    playlists.extend(media.iter().filter_map(|m| attribute(m, "URI")));
    assert_eq!(playlists.len(), 3, "and the audio rendition: {text}");
    for uri in &playlists {
        let path = folder.join(uri);
        let playlist = media_playlist(&path);
        assert!(!playlist.ended, "{uri} is still growing");
        assert!(!playlist.segments.is_empty(), "{uri} has a segment");
        for (_, segment) in &playlist.segments {
            assert!(!segment.ends_with(".tmp"), "{uri} lists {segment}");
            let file = path.parent().expect("rung folder").join(segment);
            assert!(file.is_file(), "{}", file.display());
        }
        let probed = ffprobe(&path, &["-show_streams"]);
        assert!(
            probed["streams"].as_array().is_some_and(|s| !s.is_empty()),
            "ffprobe reads {uri} while it encodes"
        );
    }

    client
        .command(guid, JobCommand::Resume)
        .await
        .expect("resumed");
    wait_completed(&client, guid).await;
    assert_eq!(target_files(&client, guid).await, [named]);
    assert_eq!(common::names_in(&folder), FINISHED_TWO_RUNGS);
    assert_finished(&folder);
    for uri in &playlists {
        assert!(media_playlist(&folder.join(uri)).ended, "{uri} ends");
    }
    assert_eq!(common::names_in(&streams), ["live"], "no twin");
    app.stop().await;
}

#[tokio::test]
async fn a_ladder_stopped_mid_encode_leaves_nothing() {
    let SlowLadder {
        _extra,
        app,
        client,
        streams,
        folder,
        guid,
    } = SlowLadder::queue("stopped").await;
    common::poll_until("ffmpeg writes the ladder", || {
        common::encoding_started(&folder)
    })
    .await;

    client.command(guid, JobCommand::Stop).await.expect("stop");
    let done = wait_finished(&client, guid).await;
    assert_eq!(done.status, JobStatus::Stopped);
    assert!(
        common::names_in(&streams).is_empty(),
        "nothing left in the destination: {:?}",
        common::names_in(&streams)
    );
    assert!(common::names_in(&app.app.dirs().tmp_encodes).is_empty());
    assert!(
        target_files(&client, guid).await.is_empty(),
        "no output named"
    );
    app.stop().await;
}

/// `videoshare encoder` over `data` with `config`, on free ports; waits
/// until it listens and returns the process and its Carbon address.
async fn start_encoder(data: &Path, config: &Path) -> (tokio::process::Child, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_videoshare"));
    command
        .args(["encoder", "--carbon", "127.0.0.1:0", "--data"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .env("VIDEOSHARE_CARBON_CODER", "127.0.0.1:0");
    common::start_command(command, "Carbon encoder listening on ").await
}

#[tokio::test]
async fn a_ladder_killed_mid_encode_starts_clean_after_a_restart() {
    common::require("ffmpeg");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = common::slow_ladder_config(dir.path());
    let data = dir.path().join("data");
    let (uploaded, streams) = (data.join("uploaded"), data.join("streams"));
    std::fs::create_dir_all(&uploaded).expect("mkdir uploaded");
    let clip = make_clip(&uploaded, "crash.mp4", 8, 854, 480);
    // Another job's folder being encoded and a finished ladder: never
    // touched by this job's clean-up.
    let theirs = streams.join("theirs");
    std::fs::create_dir_all(theirs.join("480p")).expect("mkdir");
    std::fs::write(theirs.join(".encoding"), Guid::new_random().to_string()).expect("marker");
    let finished = streams.join("finished");
    std::fs::create_dir_all(&finished).expect("mkdir");
    std::fs::write(finished.join("master.m3u8"), "#EXTM3U\n").expect("master");

    let (mut encoder, carbon) = start_encoder(&data, &config).await;
    let client = Client::new(carbon);
    let job = JobQueue::single(
        &clip.to_string_lossy(),
        common::SLOW_LADDER,
        &streams.to_string_lossy(),
    );
    let guid = client.queue(job).await.expect("queued");
    let folder = streams.join("crash");
    common::poll_until("ffmpeg writes the ladder", || {
        common::encoding_started(&folder)
    })
    .await;

    encoder.start_kill().expect("kill -9");
    encoder.wait().await.expect("the encoder is gone");
    // ffmpeg dies with it (PR_SET_PDEATHSIG).
    common::poll_until("ffmpeg is gone", || {
        common::ffmpeg_processes(&clip).is_empty()
    })
    .await;
    let marker = std::fs::read_to_string(folder.join(".encoding")).expect("marker left");
    assert_eq!(marker, guid.to_string());

    let (_encoder, carbon) = start_encoder(&data, &config).await;
    let client = Client::new(carbon);
    wait_completed(&client, guid).await;
    let output = folder.join("master.m3u8").to_string_lossy().into_owned();
    assert_eq!(target_files(&client, guid).await, [output]);
    assert_eq!(
        common::names_in(&streams),
        ["crash", "finished", "theirs"],
        "one folder for the job, no crash-1; the others untouched"
    );
    assert_finished(&folder);
    assert!(theirs.join(".encoding").is_file());
    for uri in ["480p/index.m3u8", "360p/index.m3u8", "audio/index.m3u8"] {
        let playlist = media_playlist(&folder.join(uri));
        assert!(playlist.ended, "{uri}");
        let total: f64 = playlist.segments.iter().map(|s| s.0).sum();
        assert!(
            (total - 8.0).abs() < 0.2,
            "{uri} lasts {total} s: encoded once, whole"
        );
    }
}
