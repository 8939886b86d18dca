//! What ffmpeg and ffprobe may open: the one place that lists the
//! protocols and the container formats (demuxers) every run reads with.
//!
//! A file that names other files or network addresses (an HLS playlist, a
//! DASH manifest, an ffconcat list, an SDP description), whatever its name,
//! is refused by ffmpeg itself before anything it points at is opened: only
//! the `file` protocol is allowed, and only plain media containers. Every
//! run passes [`media_input_args`] before each `-i` (ffprobe before its
//! input); only the test-clip generator reads `lavfi` sources, through
//! [`synthetic_input_args`].

/// Protocols an input may be read through: local files only. Outputs
/// (`-progress pipe:1`, the encoded files) are not inputs and are opened by
/// videoshare's own paths.
pub const PROTOCOLS: &str = "file";

/// The demuxers (as `ffmpeg -demuxers` names them) of the media we accept:
/// MP4/QuickTime (also `.m4a`, `.3gp`), Matroska/WebM, AVI, FLV, MPEG
/// transport and program streams, ASF (`.wmv`, `.wma`), Ogg, NUT, MXF and
/// DV (broadcast), WAV, AIFF, MP3, AAC (ADTS), FLAC, and single still
/// pictures (so a still is refused as "a still image", not as unreadable).
/// A component of a multi-name demuxer (`mov` of `mov,mp4,m4a,3gp,3g2,mj2`)
/// matches it. Not here, on purpose: `hls`, `dash`, `concat`, `sdp`,
/// `rtsp`, `webm_dash_manifest`, `image2` (file-name patterns) and every
/// capture device.
pub const MEDIA_FORMATS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,flv,mpegts,mpeg,\
asf,ogg,nut,mxf,dv,wav,aiff,mp3,aac,flac,\
png_pipe,jpeg_pipe,bmp_pipe,webp_pipe,tiff_pipe,gif";

/// What the join of a chunked encode's picture pieces reads
/// ([`pieces_input_args`]): a `concatf` list of the pieces' files, read as
/// one byte stream (each piece keeps the source's times, so plain
/// concatenation is the join), and nothing but local files.
pub const PIECE_PROTOCOLS: &str = "concatf,file";

/// The pieces' container: MPEG-TS only.
pub const PIECE_FORMATS: &str = "mpegts";

/// The one demuxer the test-clip generator needs: ffmpeg's `lavfi` test
/// sources (a filter graph, not a file or a protocol).
pub const SYNTHETIC_FORMATS: &str = "lavfi";

/// The options to put before each `-i` of a media file (and before
/// ffprobe's input).
pub fn media_input_args() -> [&'static str; 4] {
    [
        "-protocol_whitelist",
        PROTOCOLS,
        "-format_whitelist",
        MEDIA_FORMATS,
    ]
}

/// The options to put before the `-i concatf:LIST` of a chunked encode's
/// picture pieces (a list the encoder wrote itself, never a user's file).
pub fn pieces_input_args() -> [&'static str; 6] {
    [
        "-protocol_whitelist",
        PIECE_PROTOCOLS,
        "-format_whitelist",
        PIECE_FORMATS,
        "-f",
        PIECE_FORMATS,
    ]
}

/// The options to put before each `-i` of a generated `lavfi` source.
pub fn synthetic_input_args() -> [&'static str; 4] {
    [
        "-protocol_whitelist",
        PROTOCOLS,
        "-format_whitelist",
        SYNTHETIC_FORMATS,
    ]
}

/// A readable reason for one of ffmpeg's refusals of what the lists above
/// do not allow, given the message and the context it was logged in (the
/// `dash` of `[dash @ 0x…] Format not on whitelist '…'`). `None` for any
/// other message.
pub fn explain_refusal(context: &str, message: &str) -> Option<String> {
    let component = context.split(',').next().unwrap_or(context).trim();
    if message.starts_with("Format not on whitelist") {
        let kind = match component {
            "hls" | "dash" | "webm_dash_manifest" => "a playlist or manifest",
            "concat" => "a list of other files",
            "sdp" | "rtp" | "rtsp" => "a network stream description",
            _ => "a format",
        };
        return Some(format!(
            "it is {kind} ({component}) that is not accepted: only local media files are read"
        ));
    }
    let protocol = message
        .strip_prefix("Protocol '")?
        .split_once("' not on whitelist")?
        .0;
    Some(format!(
        "it points at a {protocol} address: only local media files are read"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_explained_and_other_messages_are_not() {
        let format =
            explain_refusal("hls", "Format not on whitelist 'mov,mp4'").unwrap_or_default();
        assert!(
            format.contains("playlist") && format.contains("(hls)"),
            "{format}"
        );
        let protocol =
            explain_refusal("http", "Protocol 'http' not on whitelist 'file'!").unwrap_or_default();
        assert!(protocol.contains("http address"), "{protocol}");
        assert_eq!(explain_refusal("mov,mp4", "moov atom not found"), None);
    }

    #[test]
    fn playlists_and_lists_are_not_on_the_list() {
        let formats: Vec<&str> = MEDIA_FORMATS.split(',').collect();
        for refused in ["hls", "dash", "concat", "sdp", "rtsp", "image2", "lavfi"] {
            assert!(!formats.contains(&refused), "{refused}");
        }
        assert_eq!(PROTOCOLS, "file");
    }
}
