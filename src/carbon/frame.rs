//! The Carbon frame codec: `CarbonAPIXML1 <N> <N bytes of payload>`.
//!
//! Owns bytes and lengths only: it knows nothing about XML, jobs or sockets.
//! Clients in the wild vary the header: some put no space between the length
//! and the XML (`CarbonAPIXML1 102<?xml …`), some more than one before the
//! length. Whitespace between frames (the `\n` / `\r\n` some clients append)
//! is skipped; anything else that is not a frame header is an error, as is a
//! declared length above the configured maximum, so memory per connection
//! stays bounded.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::doc_end::DocScan;

/// The literal that starts every frame, in both directions.
pub const MAGIC: &str = "CarbonAPIXML1";

/// Default cap on a declared payload length (1 MiB).
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// The longest length field we wait for before calling it garbage
/// (10 digits already exceeds any sane maximum).
const MAX_LENGTH_DIGITS: usize = 10;

/// Why a byte stream is not a valid sequence of Carbon frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("not a Carbon frame: expected `CarbonAPIXML1 <length> <xml>`")]
    NotAFrame,
    #[error("invalid frame length {0:?}: expected a decimal byte count")]
    BadLength(String),
    #[error("frame of {declared} bytes exceeds the limit of {max} bytes")]
    TooLarge { declared: usize, max: usize },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Whether the peer deserves an error reply (as opposed to a dead socket).
    pub fn is_protocol_error(&self) -> bool {
        !matches!(self, FrameError::Io(_) | FrameError::Truncated)
    }
}

/// tokio-util codec for Carbon frames. Decodes to the raw payload bytes and
/// encodes raw payload bytes into a whole frame.
#[derive(Debug, Clone)]
pub struct CarbonCodec {
    max_frame: usize,
    /// Set while a frame's count may be of characters (see `payload_extent`).
    allowance: Option<Allowance>,
}

impl CarbonCodec {
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame,
            allowance: None,
        }
    }
}

impl Default for CarbonCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

/// What the bytes at the front of the buffer say about the next frame.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// More bytes are needed to know.
    Incomplete,
    /// A complete header of `header_len` bytes announcing `payload_len` bytes.
    Complete {
        header_len: usize,
        payload_len: usize,
    },
}

/// Checks the header at the start of `buf` without consuming anything.
fn parse_header(buf: &[u8], max_frame: usize) -> Result<Header, FrameError> {
    let magic = MAGIC.as_bytes();
    let magic_seen = buf.len().min(magic.len());
    if buf[..magic_seen] != magic[..magic_seen] {
        return Err(FrameError::NotAFrame);
    }
    if buf.len() <= MAGIC.len() {
        return Ok(Header::Incomplete);
    }
    // One or more spaces between the magic and the length.
    let spaces = buf[MAGIC.len()..]
        .iter()
        .take_while(|&&b| b == b' ')
        .count();
    if spaces == 0 {
        return Err(FrameError::NotAFrame);
    }
    if spaces > MAX_LENGTH_DIGITS {
        return Err(FrameError::BadLength("(only spaces)".to_owned()));
    }
    let digits_start = MAGIC.len() + spaces;
    if buf.len() == digits_start {
        return Ok(Header::Incomplete);
    }
    let rest = &buf[digits_start..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let shown = || String::from_utf8_lossy(&rest[..(digits + 1).min(rest.len())]).into_owned();
    if digits > MAX_LENGTH_DIGITS {
        return Err(FrameError::BadLength(shown()));
    }
    // After the length: one separating space (or tab, or line break), or
    // straight into the XML with no separator at all.
    let separator = match rest.get(digits) {
        None => return Ok(Header::Incomplete),
        // CR LF counts as one separator.
        Some(b'\r') => match rest.get(digits + 1) {
            None => return Ok(Header::Incomplete),
            Some(b'\n') => 2,
            Some(_) => 1,
        },
        Some(b' ' | b'\t' | b'\n') => 1,
        Some(b'<') => 0,
        Some(_) => return Err(FrameError::BadLength(shown())),
    };
    if digits == 0 {
        return Err(FrameError::BadLength(shown()));
    }
    // At most 10 ASCII digits: always valid UTF-8 and fits in u64.
    let text = std::str::from_utf8(&rest[..digits]).map_err(|_| FrameError::BadLength(shown()))?;
    let declared: u64 = text.parse().map_err(|_| FrameError::BadLength(shown()))?;
    let declared = usize::try_from(declared).unwrap_or(usize::MAX);
    if declared > max_frame {
        return Err(FrameError::TooLarge {
            declared,
            max: max_frame,
        });
    }
    Ok(Header::Complete {
        header_len: digits_start + digits + separator,
        payload_len: declared,
    })
}

fn skip_whitespace(src: &mut BytesMut) {
    let blank = src
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    src.advance(blank);
}

/// The smallest step a read buffer grows by while a frame arrives.
const GROWTH_STEP: usize = 8 * 1024;

/// How much more room to make for a frame of which `have` bytes are here
/// and `missing` are still to come: at most as much again as has arrived
/// (at least [`GROWTH_STEP`]), never the whole declared size at once, so a
/// header alone cannot make a connection hold the maximal frame's memory.
fn next_step(have: usize, missing: usize) -> usize {
    missing.min(have.max(GROWTH_STEP))
}

/// Frames up to this size get the character-count allowance below.
const CHAR_COUNT_ALLOWANCE: usize = 64 * 1024;

/// A frame whose count may be of characters, being looked at.
#[derive(Debug, Clone)]
struct Allowance {
    scan: DocScan,
}

/// How long the payload really is when a client counted *characters*
/// rather than bytes (several public Carbon clients do: Java's
/// `String.length()`, Delphi's `Length`): a declared `count` cut short of a
/// document that holds non-ASCII text is extended to where the document
/// ends, within the bytes a character count can hide (UTF-8 takes at most
/// four bytes a character) and never into the next frame. `None`: more
/// bytes are needed to tell.
fn payload_extent(
    allowance: &mut Option<Allowance>,
    rest: &[u8],
    count: usize,
    at_eof: bool,
) -> Option<usize> {
    if allowance.is_none() {
        let declared = &rest[..count];
        let may_be_characters = count <= CHAR_COUNT_ALLOWANCE
            && declared.trim_ascii_start().starts_with(b"<")
            && !declared.is_ascii();
        if !may_be_characters {
            return Some(count);
        }
        let mut scan = DocScan::default();
        if scan.advance(declared).is_some() {
            return Some(count);
        }
        *allowance = Some(Allowance { scan });
    }
    let state = allowance.as_mut()?;
    let window_end = rest.len().min(count * 4);
    let next_frame = rest[count..window_end]
        .windows(MAGIC.len())
        .position(|w| w == MAGIC.as_bytes())
        .map(|at| count + at);
    let limit = next_frame.unwrap_or(window_end);
    if let Some(end) = state.scan.advance(&rest[..limit]) {
        *allowance = None;
        return Some(end);
    }
    let more_may_come = next_frame.is_none() && rest.len() < count * 4 && !at_eof;
    if more_may_come {
        return None;
    }
    // Nothing ends the document: it is what it declared (and will be
    // refused as malformed, with a reason).
    *allowance = None;
    Some(count)
}

impl CarbonCodec {
    /// Whether a frame is complete as declared but held back because its
    /// count may be of characters (see [`CarbonCodec::take_as_declared`]).
    pub fn is_holding(&self) -> bool {
        self.allowance.is_some()
    }

    /// The held frame, as long as it declared: for when no more bytes
    /// came in a while (a client whose count was right, whose XML is bad).
    pub fn take_as_declared(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        self.take(src, true)
    }

    fn take(&mut self, src: &mut BytesMut, at_eof: bool) -> Result<Option<Bytes>, FrameError> {
        skip_whitespace(src);
        if src.is_empty() {
            return Ok(None);
        }
        match parse_header(src, self.max_frame)? {
            Header::Incomplete => Ok(None),
            Header::Complete {
                header_len,
                payload_len,
            } => {
                let total = header_len + payload_len;
                if src.len() < total {
                    src.reserve(next_step(src.len(), total - src.len()));
                    return Ok(None);
                }
                let Some(len) =
                    payload_extent(&mut self.allowance, &src[header_len..], payload_len, at_eof)
                else {
                    return Ok(None);
                };
                src.advance(header_len);
                Ok(Some(src.split_to(len).freeze()))
            }
        }
    }
}

impl Decoder for CarbonCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        self.take(src, false)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.take(src, true)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated),
        }
    }
}

impl Encoder<Bytes> for CarbonCodec {
    type Error = FrameError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        let header = format!("{MAGIC} {} ", payload.len());
        dst.reserve(header.len() + payload.len());
        dst.put_slice(header.as_bytes());
        dst.put_slice(&payload);
        Ok(())
    }
}

/// Frames one payload into a standalone byte vector (for callers without a codec).
pub fn frame_bytes(payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    // Encoding into a BytesMut cannot fail.
    let _ = CarbonCodec::default().encode(Bytes::copy_from_slice(payload), &mut out);
    out.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> (Vec<Bytes>, Result<(), FrameError>, BytesMut) {
        let mut codec = CarbonCodec::new(64);
        let mut buf = BytesMut::from(input);
        let mut frames = Vec::new();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => return (frames, Ok(()), buf),
                Err(e) => return (frames, Err(e), buf),
            }
        }
    }

    #[test]
    fn decodes_one_frame() {
        let (frames, res, rest) = decode_all(b"CarbonAPIXML1 5 <a/>x");
        assert!(res.is_ok());
        assert_eq!(frames, vec![Bytes::from_static(b"<a/>x")]);
        assert!(rest.is_empty());
    }

    #[test]
    fn skips_newlines_between_frames_and_decodes_two_in_one_read() {
        let (frames, res, _) = decode_all(b"CarbonAPIXML1 4 <a/>\r\nCarbonAPIXML1 4 <b/>\n");
        assert!(res.is_ok());
        assert_eq!(
            frames,
            vec![Bytes::from_static(b"<a/>"), Bytes::from_static(b"<b/>")]
        );
    }

    #[test]
    fn waits_for_every_split_point() {
        let whole = b"CarbonAPIXML1 11 <cnpsXML/> \n";
        for cut in 0..whole.len() {
            let mut codec = CarbonCodec::new(64);
            let mut buf = BytesMut::from(&whole[..cut]);
            let first = codec.decode(&mut buf).expect("prefix is never an error");
            if cut < whole.len() - 2 {
                assert_eq!(first, None, "cut at {cut}");
                buf.extend_from_slice(&whole[cut..]);
                assert_eq!(
                    codec.decode(&mut buf).expect("whole frame"),
                    Some(Bytes::from_static(b"<cnpsXML/> "))
                );
            }
        }
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(
            decode_all(b"GET / HTTP/1.1\r\n").1,
            Err(FrameError::NotAFrame)
        ));
        assert!(matches!(
            decode_all(b"CarbonAPIXML2 3 abc").1,
            Err(FrameError::NotAFrame)
        ));
        assert!(matches!(
            decode_all(b"CarbonAPIXML1 x3 abc").1,
            Err(FrameError::BadLength(_))
        ));
        assert!(matches!(
            decode_all(b"CarbonAPIXML1 -3 abc").1,
            Err(FrameError::BadLength(_))
        ));
        assert!(matches!(
            decode_all(b"CarbonAPIXML1 12x abc").1,
            Err(FrameError::BadLength(_))
        ));
        assert!(matches!(
            decode_all(b"CarbonAPIXML1 123456789012345").1,
            Err(FrameError::BadLength(_))
        ));
    }

    #[test]
    fn takes_the_headers_real_clients_write() {
        // No space between the length and the XML.
        let (frames, res, _) = decode_all(b"CarbonAPIXML1 4<a/>CarbonAPIXML1  4 <b/>\r\n");
        assert!(res.is_ok());
        assert_eq!(
            frames,
            vec![Bytes::from_static(b"<a/>"), Bytes::from_static(b"<b/>")]
        );
        // A line break (LF or CR LF) as the separator.
        let (frames, _, _) = decode_all(b"CarbonAPIXML1 4\n<c/>CarbonAPIXML1 4\r\n<d/>");
        assert_eq!(
            frames,
            vec![Bytes::from_static(b"<c/>"), Bytes::from_static(b"<d/>")]
        );
        // A length and nothing else yet: wait.
        assert!(decode_all(b"CarbonAPIXML1 12").1.is_ok());
    }

    #[test]
    fn a_length_that_counted_characters_still_takes_the_whole_document() {
        // 17 characters, 19 bytes: "é" twice.
        let doc = "<a b=\"éé\"></a>\n".as_bytes();
        let chars = "<a b=\"éé\"></a>".chars().count();
        let mut input = format!("CarbonAPIXML1 {chars} ").into_bytes();
        input.extend_from_slice(doc);
        input.extend_from_slice(b"CarbonAPIXML1 4 <b/>");
        let (frames, res, _) = decode_all(&input);
        assert!(res.is_ok());
        assert_eq!(frames[0], Bytes::from("<a b=\"éé\"></a>"));
        assert_eq!(frames[1], Bytes::from_static(b"<b/>"));
        // The declared bytes are here but the document goes on: wait for
        // the rest; at the end of the stream, take what was declared.
        let header = format!("CarbonAPIXML1 {chars} ").len();
        let mut codec = CarbonCodec::new(64);
        let mut buf = BytesMut::from(&input[..header + chars + 1]);
        assert_eq!(codec.decode(&mut buf).expect("ok"), None);
        assert_eq!(
            codec.decode_eof(&mut buf).expect("ok").map(|b| b.len()),
            Some(chars)
        );
        // A byte count that is right is taken as it is, non-ASCII or not,
        // in any encoding (Latin-1 here), with nothing after it yet.
        let latin: &[u8] = b"CarbonAPIXML1 8 <a b='\xE9'/>";
        let (frames, _, _) = decode_all(latin);
        assert_eq!(frames, vec![Bytes::from_static(b"<a b='\xE9'/>")]);
        let exact = format!("CarbonAPIXML1 {} <a b=\"é\"/>", "<a b=\"é\"/>".len());
        let (frames, _, rest) = decode_all(exact.as_bytes());
        assert_eq!(frames, vec![Bytes::from("<a b=\"é\"/>")]);
        assert!(rest.is_empty());
    }

    #[test]
    fn refuses_oversize_before_reading_payload() {
        match decode_all(b"CarbonAPIXML1 65 ").1 {
            Err(FrameError::TooLarge { declared, max }) => assert_eq!((declared, max), (65, 64)),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // Exactly at the limit is fine (and simply incomplete here).
        assert!(decode_all(b"CarbonAPIXML1 64 ").1.is_ok());
    }

    #[test]
    fn a_declared_length_reserves_only_what_has_arrived() {
        let max = 1 << 20;
        let mut codec = CarbonCodec::new(max);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(format!("CarbonAPIXML1 {max} <cnpsXML").as_bytes());
        assert_eq!(codec.decode(&mut buf).expect("a frame begins"), None);
        assert!(
            buf.capacity() <= 2 * GROWTH_STEP,
            "{} bytes reserved for 22 received",
            buf.capacity()
        );
        // It grows with what comes, and the whole frame is still taken.
        let mut sent = buf.len();
        let header = format!("CarbonAPIXML1 {max} ").len();
        let mut taken = None;
        while sent < header + max {
            let chunk = (header + max - sent).min(100_000);
            buf.extend_from_slice(&vec![b' '; chunk]);
            sent += chunk;
            if let Some(frame) = codec.decode(&mut buf).expect("still a frame") {
                taken = Some((frame.len(), sent));
            }
        }
        assert_eq!(taken, Some((max, header + max)));
    }

    #[test]
    fn eof_mid_frame_is_truncated() {
        let mut codec = CarbonCodec::new(64);
        let mut buf = BytesMut::from(&b"CarbonAPIXML1 10 <a"[..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(FrameError::Truncated)
        ));
        let mut blank = BytesMut::from(&b"\r\n"[..]);
        assert!(matches!(codec.decode_eof(&mut blank), Ok(None)));
    }

    #[test]
    fn encodes_exact_bytes() {
        assert_eq!(
            frame_bytes(b"<cnpsXML/>"),
            b"CarbonAPIXML1 10 <cnpsXML/>".to_vec()
        );
    }
}
