//! A finished ladder's storyboard: small pictures of the video every few
//! seconds, tiled into JPEG sprite sheets (`storyboard-0.jpg`, …), and a
//! WebVTT file (`storyboard.vtt`) whose cues name the sheet and the tile
//! (`storyboard-0.jpg#xywh=160,0,160,90`) a player shows while scrubbing.
//!
//! The pictures come from the lowest video rung (the cheapest decode); all
//! files are written under temp names and renamed, the `.vtt` last, so a
//! storyboard file never names a sheet that is not there.

use std::path::{Path, PathBuf};

use super::ffmpeg_args::FfmpegArgs;
use super::hls_folder::{self, LadderFolderError};
use super::process::run_for_stdout;

/// The WebVTT file's name inside the ladder folder.
pub const STORYBOARD_VTT: &str = "storyboard.vtt";

/// Width of a tile in pixels (its height follows the picture's shape).
pub const TILE_WIDTH: u32 = 160;

/// Seconds between pictures for short videos.
pub const MIN_INTERVAL_SECS: u32 = 2;

/// Tiles a video gets at most: the interval grows past
/// [`MIN_INTERVAL_SECS`] for videos over 1,000 s to stay under it.
pub const MAX_TILES: u32 = 500;

/// Tiles across and down a sheet, at most.
pub const SHEET_SIDE: u32 = 10;

/// The name of sheet `n` inside the ladder folder (and in the cues).
pub fn sheet_name(n: u32) -> String {
    format!("storyboard-{n}.jpg")
}

/// Seconds between pictures for a video of `duration_secs`: every 2 s (a
/// scrubbing preview that changes as the pointer moves a little), longer
/// only so a video has at most 500 tiles, i.e. at most 5 full sheets of
/// 1600×900 (about 0.1–0.3 MB each) for a player to fetch.
pub fn interval_for(duration_secs: f64) -> u32 {
    let needed = (duration_secs / f64::from(MAX_TILES)).ceil();
    // A float past u32 is no real video; the cast saturates.
    (needed as u32).max(MIN_INTERVAL_SECS)
}

/// How a storyboard's tiles are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub interval_secs: u32,
    /// The video's length in milliseconds: the last cue ends there.
    pub duration_ms: u64,
    pub tile_width: u32,
    pub tile_height: u32,
    /// Pictures in all: one per interval begun.
    pub tiles: u32,
    /// Every sheet's grid: as many columns as tiles up to 10, rows likewise
    /// (a short video's single sheet has no empty tiles).
    pub columns: u32,
    pub rows: u32,
}

impl Layout {
    /// The layout for a video of `duration_secs`, pictured every
    /// `interval_secs`, with tiles `tile_width`×`tile_height`.
    pub fn new(duration_secs: f64, interval_secs: u32, tile_width: u32, tile_height: u32) -> Self {
        let duration_ms = (duration_secs.max(0.0) * 1000.0).round() as u64;
        let step = u64::from(interval_secs.max(1)) * 1000;
        let tiles = u32::try_from(duration_ms.div_ceil(step))
            .unwrap_or(u32::MAX)
            .max(1);
        let columns = tiles.min(SHEET_SIDE);
        let rows = tiles.div_ceil(columns).min(SHEET_SIDE);
        Layout {
            interval_secs: interval_secs.max(1),
            duration_ms,
            tile_width,
            tile_height,
            tiles,
            columns,
            rows,
        }
    }

    pub fn tiles_per_sheet(&self) -> u32 {
        self.columns * self.rows
    }

    pub fn sheets(&self) -> u32 {
        self.tiles.div_ceil(self.tiles_per_sheet())
    }

    /// The WebVTT text: one cue per tile, from its picture's time to the
    /// next (the last ends at the duration), naming the sheet relative to
    /// the `.vtt` and the tile's rectangle in it.
    pub fn vtt(&self) -> String {
        let step = u64::from(self.interval_secs) * 1000;
        let mut text = String::from("WEBVTT\n");
        for k in 0..self.tiles {
            let start = u64::from(k) * step;
            let end = (start + step).min(self.duration_ms);
            let (sheet, index) = (k / self.tiles_per_sheet(), k % self.tiles_per_sheet());
            let x = (index % self.columns) * self.tile_width;
            let y = (index / self.columns) * self.tile_height;
            text.push_str(&format!(
                "\n{} --> {}\n{}#xywh={x},{y},{},{}\n",
                timestamp(start),
                timestamp(end),
                sheet_name(sheet),
                self.tile_width,
                self.tile_height,
            ));
        }
        text
    }

    /// The filter that turns the rung into sheets: a picture every
    /// interval, exactly `tiles` of them (the last repeated if the stream
    /// ends early, cut if it runs on), scaled and tiled.
    fn filter(&self) -> String {
        let Layout {
            interval_secs,
            tile_width,
            tile_height,
            tiles,
            columns,
            rows,
            ..
        } = *self;
        format!(
            "fps=1/{interval_secs},scale={tile_width}:{tile_height},setsar=1,\
             tpad=stop_mode=clone:stop={tiles},trim=end_frame={tiles},tile={columns}x{rows}"
        )
    }
}

/// `HH:MM:SS.mmm`, as WebVTT cue times are written.
fn timestamp(ms: u64) -> String {
    let (s, ms) = (ms / 1000, ms % 1000);
    format!("{:02}:{:02}:{:02}.{ms:03}", s / 3600, s / 60 % 60, s % 60)
}

/// A tile's height for a picture `width`×`height`: [`TILE_WIDTH`] scaled
/// by its shape, rounded to an even number of pixels.
pub fn tile_height(width: u32, height: u32) -> u32 {
    let exact = f64::from(TILE_WIDTH) * f64::from(height) / f64::from(width.max(1));
    ((exact / 2.0).round() as u32).max(1) * 2
}

/// A storyboard as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storyboard {
    /// `<folder>/storyboard.vtt`.
    pub vtt: PathBuf,
    /// `<folder>/storyboard-0.jpg`, … in order.
    pub sheets: Vec<PathBuf>,
    pub layout: Layout,
}

/// The ffmpeg arguments that write `layout`'s sheets of the video `rung`
/// as `pattern` (an image2 pattern numbered from 0).
fn sheet_args(rung: &Path, layout: &Layout, pattern: &Path) -> FfmpegArgs {
    FfmpegArgs::new()
        .with(["-y"])
        .media_input(["-f", "mov"], rung)
        .with(["-map", "0:v:0", "-an", "-vf", layout.filter().as_str()])
        .with(["-q:v", "5", "-start_number", "0", "-f", "image2"])
        .output(pattern)
}

/// Writes the storyboard of the finished ladder in `folder`, a video of
/// `duration_secs` (the cues end there): `storyboard-N.jpg` sheets of
/// 160-pixel-wide tiles from the lowest rung, then `storyboard.vtt`.
/// Sheets an earlier, longer storyboard left beyond the new ones are
/// removed after the new `.vtt` is in place.
pub async fn write_storyboard(
    folder: &Path,
    duration_secs: f64,
) -> Result<Storyboard, LadderFolderError> {
    if !(duration_secs.is_finite() && duration_secs > 0.0) {
        return Err(LadderFolderError::Duration(duration_secs));
    }
    let ladder = hls_folder::read(folder).await?;
    let lowest = ladder.lowest();
    let layout = Layout::new(
        duration_secs,
        interval_for(duration_secs),
        TILE_WIDTH,
        tile_height(lowest.width, lowest.height),
    );
    let files = hls_folder::media_files(&lowest.playlist).await?;
    let rung = hls_folder::join(&files, folder).await?;
    let dir = folder.to_owned();
    let work = crate::fsutil::off_runtime(move || {
        tempfile::Builder::new()
            .prefix(".storyboard-")
            .tempdir_in(dir)
    })
    .await?;
    let args = sheet_args(&rung, &layout, &work.path().join("sheet-%d.jpg"));
    run_for_stdout(
        "ffmpeg",
        args.as_slice(),
        super::download::time_limit(duration_secs),
    )
    .await
    .map_err(|e| args.name_files_only_in(e))?;
    drop(rung);

    let mut sheets = Vec::new();
    for n in 0..layout.sheets() {
        let made = work.path().join(format!("sheet-{n}.jpg"));
        if !tokio::fs::try_exists(&made).await? {
            return Err(LadderFolderError::Playlist(format!(
                "ffmpeg wrote {n} of {} storyboard sheets",
                layout.sheets()
            )));
        }
        let sheet = folder.join(sheet_name(n));
        hls_folder::place(&made, &sheet).await?;
        sheets.push(sheet);
    }
    let vtt = folder.join(STORYBOARD_VTT);
    let temp = work.path().join(STORYBOARD_VTT);
    tokio::fs::write(&temp, layout.vtt()).await?;
    hls_folder::place(&temp, &vtt).await?;
    remove_sheets_from(folder, layout.sheets()).await;
    Ok(Storyboard {
        vtt,
        sheets,
        layout,
    })
}

/// Removes `storyboard-N.jpg` for N from `first` on, while they exist.
async fn remove_sheets_from(folder: &Path, first: u32) {
    for n in first.. {
        if tokio::fs::remove_file(folder.join(sheet_name(n)))
            .await
            .is_err()
        {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_two_seconds_until_a_video_would_pass_500_tiles() {
        assert_eq!(interval_for(7.0), 2);
        assert_eq!(interval_for(1000.0), 2);
        assert_eq!(interval_for(1000.5), 3);
        assert_eq!(interval_for(3600.0), 8);
        assert_eq!(interval_for(7200.0), 15);
        assert_eq!(tile_height(640, 360), 90);
        assert_eq!(tile_height(854, 480), 90);
        assert_eq!(tile_height(320, 240), 120);
        assert_eq!(tile_height(1080, 1920), 284);
    }

    #[test]
    fn a_short_video_gets_one_sheet_without_empty_tiles() {
        let layout = Layout::new(7.0, 2, 160, 90);
        assert_eq!((layout.tiles, layout.columns, layout.rows), (4, 4, 1));
        assert_eq!(layout.sheets(), 1);
        assert_eq!(
            layout.vtt(),
            "WEBVTT\n\
             \n00:00:00.000 --> 00:00:02.000\nstoryboard-0.jpg#xywh=0,0,160,90\n\
             \n00:00:02.000 --> 00:00:04.000\nstoryboard-0.jpg#xywh=160,0,160,90\n\
             \n00:00:04.000 --> 00:00:06.000\nstoryboard-0.jpg#xywh=320,0,160,90\n\
             \n00:00:06.000 --> 00:00:07.000\nstoryboard-0.jpg#xywh=480,0,160,90\n"
        );
        assert!(
            layout
                .filter()
                .ends_with("tpad=stop_mode=clone:stop=4,trim=end_frame=4,tile=4x1")
        );
        // A duration on an interval's boundary has no empty last cue.
        assert_eq!(Layout::new(6.0, 2, 160, 90).tiles, 3);
        assert_eq!(Layout::new(6.0004, 2, 160, 90).tiles, 3);
    }

    #[test]
    fn a_long_video_fills_sheets_of_ten_by_ten_and_the_last_cue_ends_at_the_duration() {
        // 1 h 1 s: every 8 s, 451 tiles, 5 sheets (the last holds 51).
        let duration = 3601.5;
        let layout = Layout::new(duration, interval_for(duration), 160, 90);
        assert_eq!(
            (
                layout.interval_secs,
                layout.tiles,
                layout.columns,
                layout.rows,
                layout.sheets()
            ),
            (8, 451, 10, 10, 5)
        );
        let text = layout.vtt();
        let cues: Vec<&str> = text.split("\n\n").skip(1).collect();
        assert_eq!(cues.len(), 451);
        assert_eq!(
            cues[100],
            "00:13:20.000 --> 00:13:28.000\nstoryboard-1.jpg#xywh=0,0,160,90"
        );
        assert_eq!(
            cues[450].trim_end(),
            "01:00:00.000 --> 01:00:01.500\nstoryboard-4.jpg#xywh=0,450,160,90"
        );
        // Every tile is inside its 1600×900 sheet.
        for cue in cues {
            let xywh = cue.split("#xywh=").nth(1).expect("xywh").trim_end();
            let v: Vec<u32> = xywh
                .split(',')
                .map(|n| n.parse().expect("number"))
                .collect();
            assert!(v[0] + v[2] <= 1600 && v[1] + v[3] <= 900, "{cue}");
        }
    }
}
