//! The master playlist a ladder publishes, made from ffmpeg's own (or,
//! for a ladder encoded in chunks, from ffmpeg's masters of its rungs and
//! of its sound, [`with_sound`]), and the test of when a ladder being
//! encoded is playable. Text in, text out: no
//! files here (the encoder's `live_folder` reads and writes them).
//!
//! ffmpeg 5.1's master lists the audio rendition a second time, as an
//! audio-only `EXT-X-STREAM-INF` variant (a player may then pick "no
//! picture"), and has no `EXT-X-INDEPENDENT-SEGMENTS` although every
//! segment starts on a keyframe. [`rewrite`] fixes both.

use crate::media::playlist;

/// The tag added after `#EXTM3U` (and `EXT-X-VERSION`): every segment of
/// every rendition starts with a keyframe (RFC 8216 4.3.5.1).
const INDEPENDENT: &str = "#EXT-X-INDEPENDENT-SEGMENTS";
const STREAM_INF: &str = "#EXT-X-STREAM-INF:";

/// ffmpeg's master playlist as the ladder publishes it: the same
/// renditions (`EXT-X-MEDIA`) and video variants, with
/// `EXT-X-INDEPENDENT-SEGMENTS`, without the audio-only variant (one whose
/// URI is an `EXT-X-MEDIA` rendition's). Blank lines are dropped.
pub fn rewrite(ffmpeg_master: &str) -> String {
    let lines: Vec<&str> = ffmpeg_master
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let renditions = playlist::master(ffmpeg_master).renditions;
    let header_end = lines
        .iter()
        .take_while(|l| **l == "#EXTM3U" || l.starts_with("#EXT-X-VERSION:"))
        .count();
    let mut out: Vec<&str> = lines[..header_end].to_vec();
    out.push(INDEPENDENT);
    let mut rest = lines[header_end..].iter().peekable();
    while let Some(line) = rest.next() {
        if *line == INDEPENDENT {
            continue;
        }
        if line.starts_with(STREAM_INF)
            && let Some(uri) = rest.peek()
            && renditions.iter().any(|r| r == *uri)
        {
            rest.next();
            continue;
        }
        out.push(line);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// ffmpeg's master of a ladder's rungs (`video_master`, no sound) with
/// the sound rendition of `sound_master` (ffmpeg's master of the sound
/// alone) added, as ffmpeg writes a one-run ladder's master: the sound's
/// `EXT-X-MEDIA`, and each variant in its group, its codecs and bandwidth
/// with the sound's. For a ladder whose rungs and sound were encoded apart
/// (chunks). Without a sound rendition in `sound_master`, `video_master`.
pub fn with_sound(video_master: &str, sound_master: &str) -> String {
    let sound = playlist::master(sound_master);
    let media: Vec<&str> = sound_master
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("#EXT-X-MEDIA:"))
        .collect();
    let (Some(first), Some(only)) = (media.first(), sound.variants.first()) else {
        return video_master.to_owned();
    };
    let list = first.trim_start_matches("#EXT-X-MEDIA:");
    let group = playlist::attribute(list, "GROUP-ID").unwrap_or(AUDIO_GROUP);
    let sound_codecs = sound_master
        .lines()
        .find_map(|l| l.trim().strip_prefix(STREAM_INF))
        .and_then(|list| playlist::attribute(list, "CODECS"));
    let mut out: Vec<String> = Vec::new();
    for line in video_master
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        if let Some(list) = line.strip_prefix(STREAM_INF) {
            out.push(variant_with_sound(
                list,
                only.bandwidth,
                sound_codecs,
                group,
            ));
            continue;
        }
        out.push(line.to_owned());
        if line.starts_with("#EXT-X-VERSION:") {
            out.extend(media.iter().map(|l| (*l).to_owned()));
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The group name ffmpeg 5.1 gives the sound rendition.
const AUDIO_GROUP: &str = "group_audio";

/// One rung's `EXT-X-STREAM-INF` line with the sound's bandwidth and
/// codecs added, in the sound's `group`.
fn variant_with_sound(
    list: &str,
    sound_bandwidth: u64,
    sound_codecs: Option<&str>,
    group: &str,
) -> String {
    let bandwidth = playlist::attribute(list, "BANDWIDTH")
        .and_then(|b| b.parse::<u64>().ok())
        .unwrap_or(0)
        + sound_bandwidth;
    let mut attributes = vec![format!("BANDWIDTH={bandwidth}")];
    if let Some(size) = playlist::attribute(list, "RESOLUTION") {
        attributes.push(format!("RESOLUTION={size}"));
    }
    let codecs: Vec<&str> = playlist::attribute(list, "CODECS")
        .into_iter()
        .chain(sound_codecs)
        .collect();
    if !codecs.is_empty() {
        attributes.push(format!("CODECS=\"{}\"", codecs.join(",")));
    }
    attributes.push(format!("AUDIO=\"{group}\""));
    format!("{STREAM_INF}{}", attributes.join(","))
}

/// Every media playlist the master names: its variants' and its
/// renditions' (`EXT-X-MEDIA` `URI`), each once.
pub fn media_playlists(master: &str) -> Vec<String> {
    let master = playlist::master(master);
    master
        .media_playlists()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Whether a media playlist lists at least one segment (a URI line after
/// an `EXTINF`).
pub fn lists_a_segment(media: &str) -> bool {
    !playlist::media(media).segments.is_empty()
}

/// Whether a ladder whose master is `master` is playable: it names at
/// least one media playlist, and `read` (a media playlist's text by its
/// URI, `None` if not there yet) finds each listing a segment.
pub fn every_playlist_has_a_segment(
    master: &str,
    mut read: impl FnMut(&str) -> Option<String>,
) -> bool {
    let playlists = media_playlists(master);
    !playlists.is_empty()
        && playlists
            .iter()
            .all(|uri| read(uri).is_some_and(|text| lists_a_segment(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ffmpeg 5.1 writes for a two-rung ladder with sound.
    const FFMPEG_MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:7\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_audio\",NAME=\"audio_2\",DEFAULT=YES,URI=\"audio/index.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=1579600,RESOLUTION=854x480,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_audio\"\n\
480p/index.m3u8\n\n\
#EXT-X-STREAM-INF:BANDWIDTH=920600,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_audio\"\n\
360p/index.m3u8\n\n\
#EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS=\"mp4a.40.2\",AUDIO=\"group_audio\"\n\
audio/index.m3u8\n\n";

    #[test]
    fn the_master_gets_independent_segments_and_loses_the_audio_only_variant() {
        let master = rewrite(FFMPEG_MASTER);
        let lines: Vec<&str> = master.lines().collect();
        assert_eq!(
            lines,
            [
                "#EXTM3U",
                "#EXT-X-VERSION:7",
                "#EXT-X-INDEPENDENT-SEGMENTS",
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_audio\",NAME=\"audio_2\",DEFAULT=YES,URI=\"audio/index.m3u8\"",
                "#EXT-X-STREAM-INF:BANDWIDTH=1579600,RESOLUTION=854x480,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_audio\"",
                "480p/index.m3u8",
                "#EXT-X-STREAM-INF:BANDWIDTH=920600,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_audio\"",
                "360p/index.m3u8",
            ]
        );
        assert!(master.ends_with('\n'));
        assert_eq!(rewrite(&master), master, "rewriting twice changes nothing");
    }

    #[test]
    fn rungs_and_sound_encoded_apart_make_a_one_run_master() {
        let rungs = "#EXTM3U\n#EXT-X-VERSION:7\n\
#EXT-X-STREAM-INF:BANDWIDTH=1540000,RESOLUTION=854x480,CODECS=\"avc1.64001e\"\n480p/index.m3u8\n\n\
#EXT-X-STREAM-INF:BANDWIDTH=880000,RESOLUTION=640x360,CODECS=\"avc1.64001e\"\n360p/index.m3u8\n\n";
        let sound = "#EXTM3U\n#EXT-X-VERSION:7\n\
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_audio\",NAME=\"audio_0\",DEFAULT=YES,URI=\"audio/index.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS=\"mp4a.40.2\",AUDIO=\"group_audio\"\naudio/index.m3u8\n";
        let master = with_sound(rungs, sound);
        let lines: Vec<&str> = master.lines().collect();
        assert_eq!(
            lines,
            [
                "#EXTM3U",
                "#EXT-X-VERSION:7",
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_audio\",NAME=\"audio_0\",DEFAULT=YES,URI=\"audio/index.m3u8\"",
                "#EXT-X-STREAM-INF:BANDWIDTH=1680800,RESOLUTION=854x480,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_audio\"",
                "480p/index.m3u8",
                "#EXT-X-STREAM-INF:BANDWIDTH=1020800,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_audio\"",
                "360p/index.m3u8",
            ]
        );
        assert_eq!(
            media_playlists(&master),
            ["480p/index.m3u8", "360p/index.m3u8", "audio/index.m3u8"]
        );
        assert_eq!(with_sound(rungs, "#EXTM3U\n"), rungs, "no sound: unchanged");
    }

    #[test]
    fn a_silent_ladder_keeps_its_one_variant() {
        let silent = "#EXTM3U\n#EXT-X-VERSION:7\n\
#EXT-X-STREAM-INF:BANDWIDTH=880000,RESOLUTION=320x240,CODECS=\"avc1.64000d\"\n360p/index.m3u8\n";
        assert_eq!(
            rewrite(silent),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-STREAM-INF:BANDWIDTH=880000,RESOLUTION=320x240,CODECS=\"avc1.64000d\"\n360p/index.m3u8\n"
        );
        assert_eq!(media_playlists(silent), ["360p/index.m3u8"]);
    }

    #[test]
    fn every_variant_and_rendition_is_a_media_playlist_once() {
        assert_eq!(
            media_playlists(FFMPEG_MASTER),
            ["480p/index.m3u8", "360p/index.m3u8", "audio/index.m3u8"]
        );
        assert_eq!(media_playlists(&rewrite(FFMPEG_MASTER)).len(), 3);
        assert!(media_playlists("#EXTM3U\n").is_empty());
    }

    #[test]
    fn a_playlist_lists_a_segment_once_a_uri_follows_an_extinf() {
        let head = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n\
#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MAP:URI=\"init_0.mp4\"\n";
        assert!(!lists_a_segment(head), "the init segment is not a segment");
        assert!(!lists_a_segment(&format!("{head}#EXTINF:4.000000,\n")));
        assert!(lists_a_segment(&format!(
            "{head}#EXTINF:4.000000,\nseg00000.m4s\n"
        )));
        assert!(!lists_a_segment(""));
    }

    #[test]
    fn playable_once_every_playlist_has_a_segment() {
        let with_segment = "#EXTM3U\n#EXTINF:4.0,\nseg00000.m4s\n".to_owned();
        let empty = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n".to_owned();
        let playable = |audio: Option<&String>| {
            every_playlist_has_a_segment(FFMPEG_MASTER, |uri| match uri {
                "audio/index.m3u8" => audio.cloned(),
                _ => Some(with_segment.clone()),
            })
        };
        assert!(playable(Some(&with_segment)));
        assert!(!playable(Some(&empty)), "the audio has no segment yet");
        assert!(!playable(None), "the audio playlist is not written yet");
        assert!(
            !every_playlist_has_a_segment("#EXTM3U\n", |_| Some(with_segment.clone())),
            "a master naming nothing is not playable"
        );
    }
}
