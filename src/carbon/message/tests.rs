//! Tests of the message shapes: the seed's templates, round trips, golden
//! bytes and the reply budget.

use super::*;

/// The seed's submit template, exactly as printed in the article (its line
/// breaks inside `CML_P_Path` included).
pub const SEED_SUBMIT: &str = "<cnpsXML TaskType=\"JobQueue\">\n<Sources>\n<Module_0 Filename=\"c:\\videoshare\\uploaded\\holiday.flv\"/>\n</Sources>\n<Destinations><Module_0\nPresetGUID=\"{85DCCE70-0B4F-4328-86D1-5FC7756D9777}\"\nModuleGUID=\"{85DCCE70-0B4F-4328-86D1-5FC7756D9777}\"\nAssignedTags=\"\"><ModuleData CML_P_Path=\"C:\\Program\nFiles\\Adobe\\Flash Media Server\n3.5\\applications\\videoshare\\streams\\_definst_\" CML_P_BaseFileName=\"%s\"/><PostconversionTasks/><Filter_1/><Filter_0/></Module_0></Destinations>\n</cnpsXML>";

pub const SEED_STATUS: &str = "<cnpsXML TaskType=\"JobStatusList\">\n<Filter>\n<Criteria_0 Parameter =\"Guid\" Operator=\"EQUAL\" Value=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\" />\n</Filter>\n</cnpsXML>";

fn sample_job() -> JobEntry {
    JobEntry {
        name: "holiday.flv".into(),
        guid: "{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}"
            .parse()
            .expect("guid"),
        state: "Active".into(),
        status: JobStatus::Started,
        progress: 42,
        description: String::new(),
        user: String::new(),
        source_description: "holiday.flv".into(),
        agent_ip: "127.0.0.1".into(),
        priority: 100,
        check_in_time: Some("11/25/26 09:30:00".into()),
        start_time: Some("11/25/26 09:30:01".into()),
        completed_time: None,
        check_in_time_cnlt: Some("2026-11-25 09:30:00".into()),
        start_time_cnlt: Some("2026-11-25 09:30:01".into()),
        completed_time_cnlt: None,
    }
}

#[test]
fn parses_the_seed_submit_template() {
    let Request::JobQueue(job) = Request::parse(SEED_SUBMIT).expect("parses") else {
        panic!("not a JobQueue");
    };
    assert_eq!(
        job.sources,
        vec![Source {
            filename: "c:\\videoshare\\uploaded\\holiday.flv".into()
        }]
    );
    assert_eq!(job.destinations.len(), 1);
    let dest = &job.destinations[0];
    assert_eq!(
        dest.preset(),
        Some("{85DCCE70-0B4F-4328-86D1-5FC7756D9777}")
    );
    assert_eq!(
        dest.module_data.path.as_deref(),
        Some(
            "C:\\Program Files\\Adobe\\Flash Media Server 3.5\\applications\\videoshare\\streams\\_definst_"
        ),
        "line breaks in attribute values are normalised to spaces"
    );
    assert_eq!(dest.module_data.base_file_name.as_deref(), Some("%s"));
    assert_eq!(job.priority, None);
}

#[test]
fn parses_the_seed_status_template_with_space_before_equals() {
    let Request::JobStatusList(list) = Request::parse(SEED_STATUS).expect("parses") else {
        panic!("not a JobStatusList");
    };
    assert_eq!(
        list,
        JobStatusList::by_guid(
            "{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}"
                .parse()
                .expect("guid")
        )
    );
}

#[test]
fn requests_round_trip() {
    let job = JobQueue {
        job_name: Some("a & b".into()),
        user: Some("ann".into()),
        sources: vec![Source {
            filename: "/data/uploaded/x \"y\".mp4".into(),
        }],
        destinations: vec![Destination {
            preset_guid: Some("{85DCCE70-0B4F-4328-86D1-5FC7756D9777}".into()),
            module_guid: Some("{85DCCE70-0B4F-4328-86D1-5FC7756D9777}".into()),
            module_data: ModuleData {
                path: Some("/data/streams".into()),
                base_file_name: Some("%s".into()),
            },
        }],
        priority: Some(7),
    };
    let req = Request::JobQueue(job);
    assert_eq!(Request::parse(&req.to_xml()).expect("round trip"), req);
    let list = Request::JobStatusList(JobStatusList::by_guid(Guid::new_random()));
    assert_eq!(Request::parse(&list.to_xml()).expect("round trip"), list);
    let all = Request::JobStatusList(JobStatusList::default());
    assert_eq!(Request::parse(&all.to_xml()).expect("round trip"), all);
}

#[test]
fn refuses_bad_documents_with_reasons() {
    type Check = fn(&MessageError) -> bool;
    let cases: [(&str, Check); 7] = [
        ("<cnpsXML TaskType=\"JobQueue\"><Sources>", |e| {
            matches!(e, MessageError::Malformed(_))
        }),
        ("", |e| matches!(e, MessageError::Empty)),
        (
            "<other TaskType=\"JobQueue\"/>",
            |e| matches!(e, MessageError::WrongRoot(n) if n == "other"),
        ),
        ("<cnpsXML/>", |e| matches!(e, MessageError::MissingTaskType)),
        (
            "<cnpsXML TaskType=\"Reboot\"/>",
            |e| matches!(e, MessageError::UnknownTaskType(t) if t == "Reboot"),
        ),
        (
            "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><cnpsXML TaskType=\"JobQueue\"/>",
            |e| matches!(e, MessageError::Dtd),
        ),
        (
            "<cnpsXML TaskType=\"JobStatusList\"><Filter><Criteria_0 Parameter=\"Guid\" Operator=\"NEAR\" Value=\"x\"/></Filter></cnpsXML>",
            |e| matches!(e, MessageError::Invalid { reason, .. } if reason.contains("NEAR")),
        ),
    ];
    for (doc, expected) in cases {
        let err = Request::parse(doc).expect_err(doc);
        assert!(expected(&err), "{doc:?} gave {err:?}");
    }
}

#[test]
fn numbered_families_are_bounded_and_unique() {
    let sources: String = (0..65)
        .map(|i| format!("<Module_{i} Filename=\"/a\"/>"))
        .collect();
    let doc = format!("<cnpsXML TaskType=\"JobQueue\"><Sources>{sources}</Sources></cnpsXML>");
    let err = Request::parse(&doc).expect_err("too many");
    assert!(err.to_string().contains("more than 64 Module_N"), "{err}");
    let twice = "<cnpsXML TaskType=\"JobQueue\"><Sources><Module_0 Filename=\"/a\"/><Module_0 Filename=\"/b\"/></Sources></cnpsXML>";
    assert!(
        Request::parse(twice)
            .expect_err("dup")
            .to_string()
            .contains("Module_0 appears twice")
    );
}

#[test]
fn golden_job_queue_reply() {
    let guid: Guid = "{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}"
        .parse()
        .expect("guid");
    assert_eq!(
        Reply::Queued { guid }.to_xml(),
        "<cnpsXML GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\" Success=\"TRUE\"/>"
    );
}

#[test]
fn golden_status_list_reply() {
    let xml = Reply::StatusList {
        jobs: vec![sample_job()],
    }
    .to_xml();
    assert_eq!(
        xml,
        "<cnpsXML Success=\"TRUE\"><JobStatusList><Job_0 Name=\"holiday.flv\" \
         GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\" State=\"Active\" Status=\"STARTED\" \
         Progress.DWD=\"42\" User=\"\" SourceDescription=\"holiday.flv\" AgentIP=\"127.0.0.1\" \
         Priority.DWD=\"100\" CheckInTime=\"11/25/26 09:30:00\" StartTime=\"11/25/26 09:30:01\" \
         CheckInTime_CNLT=\"2026-11-25 09:30:00\" StartTime_CNLT=\"2026-11-25 09:30:01\"/>\
         </JobStatusList></cnpsXML>"
    );
    assert_eq!(
        Reply::parse(&xml).expect("parses"),
        Reply::StatusList {
            jobs: vec![sample_job()]
        }
    );
}

#[test]
fn golden_failed_reply() {
    assert_eq!(
        Reply::Failed {
            error: "unknown preset \"x\"".into()
        }
        .to_xml(),
        "<cnpsXML Success=\"FALSE\" Error=\"unknown preset &quot;x&quot;\"/>"
    );
}

#[test]
fn long_fields_are_shortened_to_fit_the_seed_budget() {
    let mut job = sample_job();
    job.name = "ü&<".repeat(800);
    job.source_description = "日本語".repeat(300);
    job.description = "x".repeat(5000);
    job.user = "u".repeat(2000);
    job.completed_time = Some("11/25/26 09:31:00".into());
    job.completed_time_cnlt = Some("2026-11-25 09:31:00".into());
    let reply = Reply::StatusList { jobs: vec![job] };
    let payload = reply.to_payload();
    assert!(
        payload.len() <= SEED_REPLY_BUDGET,
        "{} bytes",
        payload.len()
    );
    let Reply::StatusList { jobs } = Reply::parse(&latin1::decode(&payload)).expect("parses")
    else {
        panic!("not a status list");
    };
    assert!(jobs[0].name.ends_with(ELLIPSIS) && jobs[0].name.starts_with("ü&<"));
    assert_eq!(jobs[0].status, JobStatus::Started);

    let failed = Reply::Failed {
        error: "<".repeat(3000),
    }
    .to_payload();
    assert!(failed.len() <= SEED_REPLY_BUDGET);
}

/// What the seed's Flex `dataHandler` does with a reply frame: skip 13 + 1
/// bytes, read 2 as the "length", skip 1, parse everything else as XML.
pub fn seed_view(frame: &[u8]) -> &[u8] {
    &frame[17..]
}

#[test]
fn the_seed_client_can_parse_our_framed_replies() {
    let guid = Guid::new_random();
    let queued = super::super::frame::frame_bytes(&Reply::Queued { guid }.to_payload());
    let text = latin1::decode(seed_view(&queued));
    // attributes()[0] is the GUID
    let mut reader = quick_xml::Reader::from_str(text.trim_start());
    let Ok(Event::Empty(root)) = reader.read_event() else {
        panic!("{text}")
    };
    let first = root
        .attributes()
        .next()
        .expect("an attribute")
        .expect("valid");
    assert_eq!(first.key.0, "GUID");
    assert_eq!(
        first
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .expect("value"),
        guid.to_string()
    );
}
