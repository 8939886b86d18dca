//! ffprobe, asked for JSON and read with serde.

use std::path::Path;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Semaphore;

use super::process::{ProcessError, run_for_stdout};

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// ffprobe runs allowed at once in this process (two per core, 2 to 16):
/// a burst of uploads, library listings and jobs waits its turn instead of
/// starting a process each.
pub fn probe_limit() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (2 * cores).clamp(2, 16)
}

/// The permits every probe in the process shares.
static PROBES: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(probe_limit()));
/// ffprobe processes running now, and the most there ever were at once.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// ffprobe processes running now.
pub fn running() -> usize {
    RUNNING.load(Ordering::Relaxed)
}

/// The most ffprobe processes that ran at once since the process started.
pub fn peak_running() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Counts one ffprobe run for as long as it lives (also when the probe is
/// dropped midway).
struct Running;

impl Running {
    fn start() -> Self {
        let now = RUNNING.fetch_add(1, Ordering::Relaxed) + 1;
        PEAK.fetch_max(now, Ordering::Relaxed);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a media file holds, as far as videoshare cares.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    /// Seconds, when the container or a stream states it.
    pub duration: Option<f64>,
    pub format_name: String,
    pub video: Option<VideoStream>,
    pub audio: Option<AudioStream>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VideoStream {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub frame_rate: Option<f64>,
    /// Frames per second as a fraction, when the rate is constant.
    pub constant_rate: Option<(u64, u64)>,
    /// ffprobe's `field_order`: `progressive`, `tt`, `bb`, `tb`, `bt`.
    pub field_order: Option<String>,
    /// The picture's shape, e.g. `(16, 9)`.
    pub display_aspect: Option<(u32, u32)>,
    /// Degrees the picture is turned for display (a phone's portrait video
    /// is stored landscape with a rotation of ±90); ffmpeg turns the frames
    /// before any filter sees them.
    pub rotation: i32,
}

impl VideoStream {
    /// Width and height as shown (and as filters see the frames): the
    /// stored size, swapped when the picture is turned a quarter.
    pub fn shown_size(&self) -> (u32, u32) {
        if self.rotation.rem_euclid(180) == 90 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioStream {
    pub codec: String,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    /// Bits per sample, where the codec or sample format says.
    pub bits_per_sample: Option<u32>,
}

/// Why a file could not be probed, or is not a usable video.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("ffprobe could not read the file: {0}")]
    Unreadable(String),
    #[error("it is {0}, not a media file (lists of other files are not accepted)")]
    Playlist(&'static str),
    #[error(transparent)]
    Tool(ProcessError),
    #[error("ffprobe printed something we could not parse: {0}")]
    BadOutput(String),
}

impl MediaInfo {
    /// The file is a video we can encode: a real moving-picture stream, not
    /// only audio, cover art or a still image.
    pub fn check_is_video(&self) -> Result<&VideoStream, Unusable> {
        if is_playlist_format(&self.format_name) {
            return Err(Unusable::Playlist(self.format_name.clone()));
        }
        let Some(video) = &self.video else {
            return Err(Unusable::NoVideo);
        };
        if is_still_image_format(&self.format_name) {
            return Err(Unusable::StillImage(video.codec.clone()));
        }
        Ok(video)
    }

    /// The file has sound we can encode (for audio-only outputs).
    pub fn check_has_audio(&self) -> Result<&AudioStream, Unusable> {
        if is_playlist_format(&self.format_name) {
            return Err(Unusable::Playlist(self.format_name.clone()));
        }
        self.audio.as_ref().ok_or(Unusable::NoAudio)
    }
}

/// Why a probed file cannot be encoded as asked. The text names only
/// ffprobe's format and codec names, never a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("it is a {0} playlist, not a media file")]
    Playlist(String),
    #[error("it has no video stream")]
    NoVideo,
    #[error("it is a still image ({0}), not a video")]
    StillImage(String),
    #[error("it has no audio stream")]
    NoAudio,
}

fn is_still_image_format(format_name: &str) -> bool {
    format_name == "image2" || format_name.ends_with("_pipe")
}

/// Formats that are lists of other files or network sources rather than
/// media: opening them would make ffmpeg read whatever they point at.
fn is_playlist_format(format_name: &str) -> bool {
    const PLAYLISTS: [&str; 6] = ["hls", "dash", "concat", "sdp", "rtsp", "webm_dash_manifest"];
    format_name.split(',').any(|f| PLAYLISTS.contains(&f))
}

/// Probes `path` with ffprobe, at most [`probe_limit`] at once in the
/// process. Playlists are refused from their first bytes; ffprobe itself
/// reads only local media (see [`super::inputs`]), so one that slips past
/// the sniff is refused too, before anything it names is opened.
pub async fn probe(path: &Path) -> Result<MediaInfo, ProbeError> {
    if let Some(kind) = sniff_playlist(path).await {
        return Err(ProbeError::Playlist(kind));
    }
    let [protocols, protocol_list, formats, format_list] = super::inputs::media_input_args();
    let args = [
        "-v".as_ref(),
        "error".as_ref(),
        protocols.as_ref(),
        protocol_list.as_ref(),
        formats.as_ref(),
        format_list.as_ref(),
        "-print_format".as_ref(),
        "json".as_ref(),
        "-show_format".as_ref(),
        "-show_streams".as_ref(),
        path.as_os_str(),
    ];
    // The semaphore is never closed; without a permit, run unbounded
    // rather than not at all.
    let _permit = PROBES.acquire().await.ok();
    let running = Running::start();
    let ran = run_for_stdout("ffprobe", args, PROBE_TIMEOUT).await;
    drop(running);
    let stdout = ran.map_err(|e| match e {
        // Say what is wrong with the file, not where the server keeps it.
        ProcessError::Failed { stderr, .. } => {
            let shown = path.to_string_lossy();
            // ffprobe starts its message with the path: drop it, and
            // name the file plainly anywhere else.
            let text = stderr.replace(&format!("{shown}: "), "");
            ProbeError::Unreadable(text.replace(&*shown, "the file"))
        }
        ProcessError::TimedOut { secs, .. } => {
            ProbeError::Unreadable(format!("no sense could be made of it within {secs} s"))
        }
        other => ProbeError::Tool(other),
    })?;
    parse(&stdout)
}

/// What kind of playlist the file is, judging by its first bytes.
async fn sniff_playlist(path: &Path) -> Option<&'static str> {
    use tokio::io::AsyncReadExt;
    let mut head = vec![0u8; 1024];
    let mut file = tokio::fs::File::open(path).await.ok()?;
    let n = file.read(&mut head).await.ok()?;
    playlist_kind(&head[..n])
}

fn playlist_kind(head: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("#extm3u") {
        Some("an HLS playlist")
    } else if lower.starts_with("ffconcat") {
        Some("an ffconcat list")
    } else if lower.starts_with("<?xml") && lower.contains("<mpd") || lower.starts_with("<mpd") {
        Some("a DASH manifest")
    } else if lower.starts_with("v=0") {
        Some("an SDP session description")
    } else {
        None
    }
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Stream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    field_order: Option<String>,
    display_aspect_ratio: Option<String>,
    sample_rate: Option<String>,
    channels: Option<u32>,
    bits_per_sample: Option<u32>,
    bits_per_raw_sample: Option<String>,
    sample_fmt: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    disposition: Disposition,
    #[serde(default)]
    tags: StreamTags,
    #[serde(default)]
    side_data_list: Vec<SideData>,
}

#[derive(Deserialize, Default)]
struct StreamTags {
    /// Older muxers' rotation, in degrees.
    rotate: Option<String>,
}

#[derive(Deserialize)]
struct SideData {
    /// A display matrix's rotation, in degrees (counter-clockwise).
    rotation: Option<f64>,
}

impl Stream {
    /// The rotation the stream asks for, in whole degrees.
    fn rotation(&self) -> i32 {
        self.side_data_list
            .iter()
            .find_map(|d| d.rotation)
            .or_else(|| self.tags.rotate.as_deref()?.trim().parse().ok())
            .filter(|r| r.is_finite())
            .map(|r| r.round() as i32)
            .unwrap_or(0)
    }
}

#[derive(Deserialize, Default)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct Format {
    format_name: Option<String>,
    duration: Option<String>,
}

/// `"30000/1001"` as a fraction of whole numbers; `0/0` is unknown.
fn parse_fraction(text: &str, separator: char) -> Option<(u64, u64)> {
    let (num, den) = text.split_once(separator).unwrap_or((text, "1"));
    let (num, den): (u64, u64) = (num.trim().parse().ok()?, den.trim().parse().ok()?);
    (num > 0 && den > 0).then_some((num, den))
}

/// Bits per sample: the stream's own figure, else its sample format's.
fn sample_bits(s: &Stream) -> Option<u32> {
    let raw = s
        .bits_per_raw_sample
        .as_deref()
        .and_then(|b| b.parse().ok())
        .filter(|b| *b > 0);
    raw.or(s.bits_per_sample.filter(|b| *b > 0)).or_else(|| {
        match s.sample_fmt.as_deref()?.trim_end_matches('p') {
            "u8" => Some(8),
            "s16" => Some(16),
            "s32" | "flt" => Some(32),
            "s64" | "dbl" => Some(64),
            _ => None,
        }
    })
}

/// `"30000/1001"` or `"25"` as frames per second; `0/0` is unknown.
fn parse_rate(text: &str) -> Option<f64> {
    let (num, den) = text.split_once('/').unwrap_or((text, "1"));
    let (num, den): (f64, f64) = (num.trim().parse().ok()?, den.trim().parse().ok()?);
    (den > 0.0 && num > 0.0).then(|| num / den)
}

fn parse_seconds(text: Option<&str>) -> Option<f64> {
    text.and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
}

fn parse(stdout: &[u8]) -> Result<MediaInfo, ProbeError> {
    let out: Output =
        serde_json::from_slice(stdout).map_err(|e| ProbeError::BadOutput(e.to_string()))?;
    let video = out
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0);
    let audio = out
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"));
    let stream_duration = out
        .streams
        .iter()
        .filter_map(|s| parse_seconds(s.duration.as_deref()))
        .fold(None, |max: Option<f64>, d| {
            Some(max.map_or(d, |m| m.max(d)))
        });
    let format = out.format.as_ref();
    Ok(MediaInfo {
        duration: parse_seconds(format.and_then(|f| f.duration.as_deref())).or(stream_duration),
        format_name: format
            .and_then(|f| f.format_name.clone())
            .unwrap_or_default(),
        video: video.map(|s| VideoStream {
            codec: s.codec_name.clone().unwrap_or_default(),
            width: s.width.unwrap_or(0),
            height: s.height.unwrap_or(0),
            frame_rate: s.avg_frame_rate.as_deref().and_then(parse_rate),
            constant_rate: match (s.r_frame_rate.as_deref(), s.avg_frame_rate.as_deref()) {
                (Some(r), Some(avg)) if parse_rate(r) == parse_rate(avg) => parse_fraction(r, '/'),
                _ => None,
            },
            field_order: s.field_order.clone().filter(|f| f != "unknown"),
            display_aspect: s
                .display_aspect_ratio
                .as_deref()
                .and_then(|a| parse_fraction(a, ':'))
                .and_then(|(x, y)| Some((u32::try_from(x).ok()?, u32::try_from(y).ok()?))),
            rotation: s.rotation(),
        }),
        audio: audio.map(|s| AudioStream {
            codec: s.codec_name.clone().unwrap_or_default(),
            sample_rate: s.sample_rate.as_deref().and_then(|r| r.parse().ok()),
            channels: s.channels,
            bits_per_sample: sample_bits(s),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlists_are_recognised_from_their_first_bytes() {
        assert_eq!(
            playlist_kind(b"#EXTM3U\n#EXTINF:1,\na.mp4\n"),
            Some("an HLS playlist")
        );
        assert_eq!(
            playlist_kind(b"\xEF\xBB\xBF  #extm3u\n"),
            Some("an HLS playlist")
        );
        assert_eq!(
            playlist_kind(b"ffconcat version 1.0\nfile a.mp4\n"),
            Some("an ffconcat list")
        );
        assert_eq!(
            playlist_kind(b"<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash\">"),
            Some("a DASH manifest")
        );
        assert_eq!(
            playlist_kind(b"v=0\no=- 0 0 IN IP4 127.0.0.1\n"),
            Some("an SDP session description")
        );
        assert_eq!(playlist_kind(b"\x00\x00\x00\x20ftypisom"), None);
        assert_eq!(playlist_kind(b""), None);
    }

    #[test]
    fn reads_a_typical_mp4() {
        let json = br#"{"streams":[
            {"codec_type":"video","codec_name":"h264","width":720,"height":480,"avg_frame_rate":"30000/1001","duration":"2.002"},
            {"codec_type":"audio","codec_name":"aac","sample_rate":"44100","channels":2,"duration":"2.020"}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"2.020000"}}"#;
        let info = parse(json).expect("parses");
        assert_eq!(info.duration, Some(2.02));
        let video = info.check_is_video().expect("a video");
        assert_eq!(
            (video.width, video.height, video.codec.as_str()),
            (720, 480, "h264")
        );
        assert!((video.frame_rate.unwrap_or_default() - 29.97).abs() < 0.01);
        assert_eq!(
            info.audio.map(|a| (a.codec, a.sample_rate, a.channels)),
            Some(("aac".into(), Some(44100), Some(2)))
        );
    }

    #[test]
    fn a_phone_video_turned_a_quarter_is_shown_portrait() {
        let turned = |side_data: &str| {
            let json = format!(
                r#"{{"streams":[{{"codec_type":"video","codec_name":"h264","width":1920,"height":1080,{side_data}}}],
                "format":{{"format_name":"mov","duration":"1.0"}}}}"#
            );
            parse(json.as_bytes())
                .expect("parses")
                .video
                .expect("video")
        };
        let matrix =
            turned(r#""side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]"#);
        assert_eq!((matrix.rotation, matrix.shown_size()), (-90, (1080, 1920)));
        let tagged = turned(r#""tags":{"rotate":"270"}"#);
        assert_eq!(tagged.shown_size(), (1080, 1920));
        let upside_down = turned(r#""tags":{"rotate":"180"}"#);
        assert_eq!(upside_down.shown_size(), (1920, 1080));
        let plain = turned(r#""tags":{"language":"und"}"#);
        assert_eq!((plain.rotation, plain.shown_size()), (0, (1920, 1080)));
    }

    #[test]
    fn cover_art_and_stills_are_not_videos() {
        let mp3 = br#"{"streams":[{"codec_type":"audio","codec_name":"mp3"},
            {"codec_type":"video","codec_name":"mjpeg","disposition":{"attached_pic":1}}],
            "format":{"format_name":"mp3","duration":"3.0"}}"#;
        assert!(parse(mp3).expect("parses").check_is_video().is_err());
        let png =
            br#"{"streams":[{"codec_type":"video","codec_name":"png","width":10,"height":10}],
            "format":{"format_name":"png_pipe"}}"#;
        let err = parse(png)
            .expect("parses")
            .check_is_video()
            .expect_err("still");
        assert_eq!(err, Unusable::StillImage("png".into()));
        assert!(err.to_string().contains("still image"), "{err}");
        let hls =
            br#"{"streams":[{"codec_type":"video","codec_name":"h264","width":160,"height":120}],
            "format":{"format_name":"hls","duration":"1.0"}}"#;
        let err = parse(hls)
            .expect("parses")
            .check_is_video()
            .expect_err("playlist");
        assert!(matches!(err, Unusable::Playlist(_)), "{err}");
    }
}
