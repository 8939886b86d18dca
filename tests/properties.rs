//! Property tests of the parsers a peer controls: the Carbon frame decoder
//! and the XML request/reply parsers. On any input: no panic, memory bounded
//! by the frame limit, and what we write we read back.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use videoshare::carbon::message::{Destination, JobQueue, ModuleData, Source};
use videoshare::carbon::{CarbonCodec, Reply, ReplyKind, Request};

const MAX_FRAME: usize = 4096;

/// Every shape a client may expect a reply in.
const KINDS: [ReplyKind; 12] = [
    ReplyKind::Queued,
    ReplyKind::StatusList,
    ReplyKind::JobList,
    ReplyKind::Info,
    ReplyKind::Job,
    ReplyKind::Evaluated,
    ReplyKind::Profiles,
    ReplyKind::Version,
    ReplyKind::Roles,
    ReplyKind::Nodes,
    ReplyKind::Node,
    ReplyKind::Properties,
];

/// Feeds `bytes` to a decoder in `chunks`-sized pieces, as TCP might, then
/// ends the stream; returns how many frames came out and whether the
/// stream was refused.
fn decode_all(bytes: &[u8], chunk: usize) -> (usize, bool) {
    let mut codec = CarbonCodec::new(MAX_FRAME);
    let mut buffer = BytesMut::new();
    let mut frames = 0;
    for piece in bytes.chunks(chunk.max(1)) {
        buffer.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(payload)) => {
                    assert!(payload.len() <= 4 * MAX_FRAME);
                    frames += 1;
                }
                Ok(None) => break,
                // The server answers an error frame and closes.
                Err(_) => return (frames, true),
            }
        }
        // Whatever is still buffered is at most one header and a frame
        // (four times its count, if the count may be of characters).
        assert!(
            buffer.len() <= 4 * MAX_FRAME + 64,
            "{} bytes buffered",
            buffer.len()
        );
    }
    // The peer closes: a frame still waiting for more is taken as declared.
    loop {
        match codec.decode_eof(&mut buffer) {
            Ok(Some(payload)) => {
                assert!(payload.len() <= 4 * MAX_FRAME);
                frames += 1;
            }
            Ok(None) => break,
            Err(_) => return (frames, true),
        }
    }
    (frames, false)
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("CarbonAPIXML1 {} ", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_decoder_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..20_000), chunk in 1usize..700) {
        decode_all(&bytes, chunk);
    }

    #[test]
    fn the_decoder_survives_headers_with_any_length(len in any::<i64>(), tail in proptest::collection::vec(any::<u8>(), 0..200), chunk in 1usize..50) {
        let mut bytes = format!("CarbonAPIXML1 {len} ").into_bytes();
        bytes.extend(tail);
        decode_all(&bytes, chunk);
    }

    #[test]
    fn valid_frames_come_out_whole_however_they_are_split(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 1..8),
        chunk in 1usize..900,
        separator in prop_oneof![Just(&b""[..]), Just(&b"\n"[..]), Just(&b"\r\n"[..])],
    ) {
        let mut stream = Vec::new();
        for p in &payloads {
            stream.extend(frame(p));
            stream.extend_from_slice(separator);
        }
        let (frames, failed) = decode_all(&stream, chunk);
        prop_assert!(!failed);
        prop_assert_eq!(frames, payloads.len());
    }

    #[test]
    fn request_parsing_survives_any_text(text in "\\PC{0,400}") {
        let _ = Request::parse(&text);
    }

    #[test]
    fn request_parsing_survives_near_miss_documents(
task in prop_oneof![
            Just("JobQueue".to_owned()),
            Just("JobStatusList".to_owned()),
            Just("JobCommand".to_owned()),
            Just("NodeCommand".to_owned()),
            Just("JobEvaluate".to_owned()),
            Just("ProfileList".to_owned()),
            "[A-Za-z]{0,12}",
        ],
        body in "[<>/=\" a-zA-Z_0-9&;#{}-]{0,300}",
    ) {
        let doc = format!("<cnpsXML TaskType=\"{task}\" Command=\"Pause\" GUID=\"{{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}}\">{body}</cnpsXML>");
        let _ = Request::parse(&doc);
    }

    #[test]
    fn reply_parsing_survives_any_text(text in "\\PC{0,400}", kind in 0usize..KINDS.len()) {
        let _ = Reply::parse(&text, KINDS[kind]);
    }

    #[test]
    fn any_job_queue_round_trips(
        name in "\\PC{0,80}",
        user in "\\PC{0,40}",
        source in "\\PC{1,120}",
        dirs in proptest::collection::vec("\\PC{1,80}", 1..4),
        priority in proptest::option::of(0u32..=255),
    ) {
        let job = JobQueue {
            job_name: Some(name),
            user: Some(user),
            sources: vec![Source::file(source)],
            destinations: dirs
                .into_iter()
                .map(|dir| Destination {
                    preset_guid: Some("{85DCCE70-0B4F-4328-86D1-5FC7756D9777}".into()),
                    module_guid: None,
                    module_data: ModuleData { path: Some(dir), base_file_name: Some("%s".into()) },
                    ..Destination::default()
                })
                .collect(),
            priority,
            ..JobQueue::default()
        };
        let request = Request::JobQueue(job);
        let xml = request.to_xml();
        let parsed = Request::parse(&xml);
        // Tabs and line breaks are written as character references, so even
        // they survive XML's attribute normalisation: text comes back exactly.
        match (parsed, &request) {
            (Ok(Request::JobQueue(back)), Request::JobQueue(sent)) => {
                prop_assert_eq!(&back.job_name, &sent.job_name);
                prop_assert_eq!(&back.user, &sent.user);
                prop_assert_eq!(back.sources[0].main_file(), sent.sources[0].main_file());
                prop_assert_eq!(back.destinations.len(), sent.destinations.len());
                prop_assert_eq!(back.priority, sent.priority);
            }
            (other, _) => prop_assert!(false, "{xml} parsed as {other:?}"),
        }
    }
}
