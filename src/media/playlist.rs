//! HLS playlist text (RFC 8216): the one parser of master and media
//! playlists, for the encoder (is a ladder playable yet, its master's
//! rewrite), the ladder's extras and the portal's library, and the writer
//! of the media playlists of a ladder joined from chunks
//! ([`media_playlist`]). Text in, plain data out: no files, and URIs are
//! returned as written (joining them to a folder safely is
//! [`super::hls_folder::join_uri`]'s job).

/// One `EXT-X-STREAM-INF` variant of a master playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// `RESOLUTION`, when the variant has pictures.
    pub size: Option<(u32, u32)>,
    /// `BANDWIDTH` (peak bits per second); 0 when missing or unreadable.
    pub bandwidth: u64,
    /// Its media playlist.
    pub uri: String,
}

/// What a master playlist lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Master {
    /// The variants, in listed order.
    pub variants: Vec<Variant>,
    /// The `URI`s of its `EXT-X-MEDIA` renditions, in listed order.
    pub renditions: Vec<String>,
    /// The first `TYPE=AUDIO` rendition's `URI`.
    pub audio: Option<String>,
}

impl Master {
    /// The video variants (those with a `RESOLUTION`), in listed order.
    pub fn video(&self) -> impl Iterator<Item = &Variant> {
        self.variants.iter().filter(|v| v.size.is_some())
    }

    /// The sound's media playlist: the audio rendition, or else an
    /// audio-only variant (as ffmpeg also writes one).
    pub fn sound(&self) -> Option<&str> {
        self.audio.as_deref().or_else(|| {
            self.variants
                .iter()
                .find(|v| v.size.is_none())
                .map(|v| v.uri.as_str())
        })
    }

    /// Every media playlist it names, each once: the variants' and the
    /// renditions', in order.
    pub fn media_playlists(&self) -> Vec<&str> {
        let mut uris: Vec<&str> = Vec::new();
        let named = self.variants.iter().map(|v| v.uri.as_str());
        for uri in named.chain(self.renditions.iter().map(String::as_str)) {
            if !uris.contains(&uri) {
                uris.push(uri);
            }
        }
        uris
    }
}

/// What a media playlist lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Media {
    /// The `EXT-X-MAP` `URI` (an fMP4 rendition's init segment).
    pub init: Option<String>,
    /// The segments' URIs (each after an `EXTINF`), in playing order.
    pub segments: Vec<String>,
    /// Each segment's `EXTINF` duration in seconds (unreadable or negative
    /// ones 0), in the order of `segments`.
    pub durations: Vec<f64>,
    /// The sum of the `EXTINF` durations, in seconds (unreadable or
    /// negative ones count 0).
    pub duration: f64,
    /// Whether it ends with `EXT-X-ENDLIST` (nothing more will be added).
    pub ended: bool,
    /// `EXT-X-TARGETDURATION`, in seconds.
    pub target: Option<u32>,
}

/// The lines of a playlist that say something: trimmed, blanks dropped.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// Reads a master playlist.
pub fn master(text: &str) -> Master {
    let mut master = Master::default();
    let mut pending: Option<&str> = None;
    for line in lines(text) {
        if let Some(list) = line.strip_prefix("#EXT-X-MEDIA:") {
            let uri = attribute(list, "URI");
            if let Some(uri) = uri {
                master.renditions.push(uri.to_owned());
            }
            if attribute(list, "TYPE") == Some("AUDIO") && master.audio.is_none() {
                master.audio = uri.map(str::to_owned);
            }
        } else if let Some(list) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            pending = Some(list);
        } else if !line.starts_with('#')
            && let Some(list) = pending.take()
        {
            master.variants.push(Variant {
                size: attribute(list, "RESOLUTION")
                    .and_then(|r| r.split_once('x'))
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?))),
                bandwidth: attribute(list, "BANDWIDTH")
                    .and_then(|b| b.parse().ok())
                    .unwrap_or(0),
                uri: line.to_owned(),
            });
        }
    }
    master
}

/// Reads a media playlist.
pub fn media(text: &str) -> Media {
    let mut media = Media::default();
    let mut after_extinf = false;
    let mut extinf = 0.0;
    for line in lines(text) {
        if let Some(value) = line.strip_prefix("#EXTINF:") {
            let seconds = value.split(',').next().unwrap_or_default().trim();
            extinf = seconds
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(0.0);
            media.duration += extinf;
            after_extinf = true;
        } else if let Some(value) = line.strip_prefix("#EXT-X-MAP:") {
            if media.init.is_none() {
                media.init = attribute(value, "URI").map(str::to_owned);
            }
        } else if let Some(value) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            media.target = value.trim().parse().ok();
        } else if line == "#EXT-X-ENDLIST" {
            media.ended = true;
        } else if !line.starts_with('#') && std::mem::take(&mut after_extinf) {
            media.segments.push(line.to_owned());
            media.durations.push(extinf);
        }
    }
    media
}

/// A media playlist of fMP4 segments (RFC 8216, version 7): the init
/// segment `init` (`EXT-X-MAP`), then `segments` (URI, seconds) in
/// playing order, numbered from 0. An `EVENT` playlist (segments are only
/// ever added), ended (`EXT-X-ENDLIST`) when `ended`. The target duration
/// is the longest segment rounded up, and never below `target_secs` (the
/// segment length asked for), so it does not change while segments are
/// added.
pub fn media_playlist(
    target_secs: u32,
    init: &str,
    segments: &[(String, f64)],
    ended: bool,
) -> String {
    let longest = segments
        .iter()
        .map(|(_, seconds)| seconds.ceil())
        .fold(f64::from(target_secs), f64::max);
    let mut text = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{init}\"\n",
        longest as u64
    );
    for (uri, seconds) in segments {
        text.push_str(&format!("#EXTINF:{seconds:.6},\n{uri}\n"));
    }
    if ended {
        text.push_str("#EXT-X-ENDLIST\n");
    }
    text
}

/// An attribute's value in an attribute list (RFC 8216 4.2), quotes
/// removed; commas inside quotes (`CODECS="a,b"`) do not split.
pub fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let (value, tail) = quoted.split_once('"')?;
                (value, tail.strip_prefix(',').unwrap_or(tail))
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What ffmpeg 5.1 writes for a two-rung ladder with sound (its
    /// audio-only variant listed between the rungs).
    pub(crate) const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:7\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_audio\",NAME=\"audio\",DEFAULT=YES,URI=\"audio/index.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=854x480,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_audio\"\n\
        480p/index.m3u8\n\n\
        #EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS=\"mp4a.40.2\",AUDIO=\"group_audio\"\naudio/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_audio\"\n\
        360p/index.m3u8\n";

    #[test]
    fn a_master_lists_video_variants_renditions_and_its_sound() {
        let master = master(MASTER);
        let video: Vec<_> = master
            .video()
            .map(|v| (v.size, v.bandwidth, v.uri.as_str()))
            .collect();
        assert_eq!(
            video,
            [
                (Some((854, 480)), 1_500_000, "480p/index.m3u8"),
                (Some((640, 360)), 900_000, "360p/index.m3u8"),
            ]
        );
        assert_eq!(master.renditions, ["audio/index.m3u8"]);
        assert_eq!(master.sound(), Some("audio/index.m3u8"));
        assert_eq!(
            master.media_playlists(),
            ["480p/index.m3u8", "audio/index.m3u8", "360p/index.m3u8"]
        );
        let silent =
            super::master("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2x2\nv.m3u8\n");
        assert_eq!(silent.sound(), None);
    }

    #[test]
    fn a_media_playlist_sums_its_extinf_and_lists_its_segments() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init_0.mp4\"\n\
            #EXTINF:4.000000,\nseg00000.m4s\n#EXTINF:2.500000,\nseg00001.m4s\n#EXT-X-ENDLIST\n";
        let media = media(text);
        assert!((media.duration - 6.5).abs() < 1e-9);
        assert_eq!(media.init.as_deref(), Some("init_0.mp4"));
        assert_eq!(media.segments, ["seg00000.m4s", "seg00001.m4s"]);
        assert!(media.ended);
        let growing = super::media("#EXTM3U\n#EXT-X-MAP:URI=\"i.mp4\"\n#EXTINF:nan,\nx.m4s\n");
        assert_eq!((growing.duration, growing.ended), (0.0, false));
        assert!(
            super::media("#EXTM3U\n#EXT-X-MAP:URI=\"i.mp4\"\n")
                .segments
                .is_empty()
        );
    }

    #[test]
    fn a_written_media_playlist_reads_back() {
        let segments = [
            ("seg00000.m4s".to_owned(), 4.0),
            ("seg00001.m4s".to_owned(), 4.04),
        ];
        let growing = media_playlist(4, "init.mp4", &segments, false);
        assert!(growing.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:5\n"));
        assert!(
            growing.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
            "{growing}"
        );
        assert!(
            growing.contains("#EXTINF:4.040000,\nseg00001.m4s\n"),
            "{growing}"
        );
        let read = media(&growing);
        assert_eq!(read.init.as_deref(), Some("init.mp4"));
        assert_eq!(read.segments, ["seg00000.m4s", "seg00001.m4s"]);
        assert_eq!(read.durations, [4.0, 4.04]);
        assert_eq!(read.target, Some(5));
        assert!(!read.ended);
        let ended = media_playlist(4, "init.mp4", &segments[..1], true);
        assert!(ended.contains("#EXT-X-TARGETDURATION:4\n"), "{ended}");
        assert!(media(&ended).ended && ended.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn attributes_keep_quoted_commas() {
        let list = "BANDWIDTH=1,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"a\"";
        assert_eq!(attribute(list, "CODECS"), Some("avc1.64001e,mp4a.40.2"));
        assert_eq!(attribute(list, "AUDIO"), Some("a"));
        assert_eq!(attribute(list, "BANDWIDTH"), Some("1"));
        assert_eq!(attribute(list, "RESOLUTION"), None);
        assert_eq!(attribute("BROKEN=\"x", "BROKEN"), None);
    }
}
