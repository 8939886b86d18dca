//! Tests of the message shapes: the seed's templates, round trips, golden
//! bytes and the reply budget.

use quick_xml::events::Event;

use super::reply::ELLIPSIS;
use super::*;
use crate::carbon::{Guid, JobStatus, latin1};

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
        fps: None,
        speed: None,
        queue_position: None,
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
            |e| matches!(e, MessageError::UnknownTaskType(t) if t.contains("\"Reboot\"; expected one of JobQueue")),
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
        Reply::parse(&xml, ReplyKind::StatusList).expect("parses"),
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
    let Reply::StatusList { jobs } =
        Reply::parse(&latin1::decode(&payload), ReplyKind::StatusList).expect("parses")
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

fn guid() -> Guid {
    "{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}"
        .parse()
        .expect("guid")
}

#[test]
fn every_request_round_trips() {
    let mut requests = vec![
        Request::JobList,
        Request::Version,
        Request::JobEvaluate(JobEvaluate {
            sources: vec![
                Source {
                    filename: "/data/a.mp4".into(),
                },
                Source {
                    filename: "c:\\videoshare\\uploaded\\b <&>.flv".into(),
                },
            ],
        }),
        Request::ProfileList(ProfileList::default()),
        Request::ProfileList(ProfileList {
            profile_type: Some("Destination".into()),
        }),
    ];
    requests.extend(NodeCommand::ALL.iter().copied().map(Request::NodeCommand));
    let commands = [
        Command::QueryInfo,
        Command::Query,
        Command::Stop,
        Command::Pause,
        Command::Resume,
        Command::SetPriority(200),
        Command::Requeue,
        Command::Remove,
    ];
    assert_eq!(commands.len(), CommandKind::ALL.len(), "every command");
    requests.extend(commands.map(|command| {
        Request::JobCommand(JobCommand {
            guid: guid(),
            command,
        })
    }));
    let mut seen: Vec<TaskType> = Vec::new();
    for request in requests {
        let xml = request.to_xml();
        assert_eq!(Request::parse(&xml).expect(&xml), request, "{xml}");
        seen.push(request.task_type());
    }
    // With the JobQueue and JobStatusList of `requests_round_trip`: all eight.
    for task in TaskType::ALL {
        assert!(
            seen.contains(task) || matches!(task, TaskType::JobQueue | TaskType::JobStatusList),
            "{task} not covered"
        );
    }
}

#[test]
fn job_command_fields_are_checked() {
    let cases = [
        (
            "<cnpsXML TaskType=\"JobCommand\" GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\"/>",
            "Command",
        ),
        (
            "<cnpsXML TaskType=\"JobCommand\" Command=\"Pause\"/>",
            "GUID",
        ),
        (
            "<cnpsXML TaskType=\"JobCommand\" Command=\"Pause\" GUID=\"12\"/>",
            "GUID",
        ),
        (
            "<cnpsXML TaskType=\"JobCommand\" Command=\"Explode\" GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\"/>",
            "Explode",
        ),
        (
            "<cnpsXML TaskType=\"JobCommand\" Command=\"SetPriority\" GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\"/>",
            "Priority.DWD",
        ),
        (
            "<cnpsXML TaskType=\"NodeCommand\" Command=\"Reboot\"/>",
            "Reboot",
        ),
    ];
    for (doc, named) in cases {
        let err = Request::parse(doc).expect_err(doc).to_string();
        assert!(err.contains(named), "{doc}: {err}");
    }
    // Keywords are case-insensitive, as Carbon's are.
    let lower = "<cnpsXML TaskType=\"jobcommand\" Command=\"pause\" guid=\"{0f3c5e0a-2b7d-4c1e-9a57-3d2b8e6f1c40}\"/>";
    assert_eq!(
        Request::parse(lower).expect("parses"),
        Request::JobCommand(JobCommand {
            guid: guid(),
            command: Command::Pause
        })
    );
}

fn sample_info() -> JobInfo {
    JobInfo {
        job: sample_job(),
        sources: vec![Source {
            filename: "/data/uploaded/holiday.flv".into(),
        }],
        destinations: vec![DestinationInfo {
            preset_guid: guid(),
            preset_name: "480p".into(),
            module_data: ModuleData {
                path: Some("/data/streams".into()),
                base_file_name: Some("%s".into()),
            },
            output: Some(OutputFile {
                filename: "/data/streams/holiday.mp4".into(),
            }),
        }],
    }
}

fn sample_node() -> NodeStatus {
    NodeStatus {
        name: "videoshare".into(),
        ip: "127.0.0.1".into(),
        enabled: 1,
        priority: 100,
        slots: 2,
        free_slots: 1,
        running_jobs: 1,
        queued_jobs: 3,
    }
}

#[test]
fn every_reply_round_trips() {
    let replies = vec![
        Reply::Queued { guid: guid() },
        Reply::StatusList { jobs: vec![] },
        Reply::StatusList {
            jobs: vec![sample_job(), sample_job()],
        },
        Reply::JobList {
            guids: vec![guid(), Guid::new_random()],
        },
        Reply::Status(Box::new(sample_job())),
        Reply::Info(Box::new(sample_info())),
        Reply::Removed { guid: guid() },
        Reply::Evaluated {
            sources: vec![EvaluatedSource {
                filename: "c:\\in.mov".into(),
                format: "mov,mp4,m4a,3gp,3g2,mj2".into(),
                description: PublicDescription {
                    video: Some(VideoDescription {
                        width: 320,
                        height: 240,
                        frame_rate: Some(25.0),
                        duration: Some(2.0),
                        codec: "h264".into(),
                    }),
                    audio: Some(AudioDescription {
                        sample_rate: Some(44100),
                        channels: Some(2),
                        codec: "aac".into(),
                    }),
                },
            }],
        },
        Reply::Profiles {
            profiles: vec![Profile {
                guid: guid(),
                name: "480p".into(),
                description: "H.264".into(),
                profile_type: "Destination".into(),
                container: "mp4".into(),
                extension: "mp4".into(),
                video_codec: Some("libx264".into()),
                video_kbps: Some(800),
                width: Some(720),
                height: Some(480),
                audio_codec: None,
                audio_kbps: None,
            }],
        },
        Reply::Version(VersionInfo {
            product: "videoshare".into(),
            version: "0.1.0".into(),
            api_version: "1.2".into(),
        }),
        Reply::Node(sample_node()),
        Reply::ServerNodes {
            nodes: vec![sample_node()],
        },
    ];
    let mut kinds: Vec<ReplyKind> = Vec::new();
    for reply in replies {
        let xml = reply.to_xml();
        let kind = reply.kind().expect("a success");
        assert_eq!(Reply::parse(&xml, kind).expect(&xml), reply, "{xml}");
        kinds.push(kind);
    }
    assert_eq!(
        Reply::parse(
            &Reply::Failed { error: "no".into() }.to_xml(),
            ReplyKind::Version
        )
        .expect("parses"),
        Reply::Failed { error: "no".into() },
        "a failure parses whatever was expected"
    );
    for kind in ReplyKind::ALL {
        assert!(kinds.contains(&kind), "{kind:?} not covered");
    }
}

#[test]
fn golden_control_replies() {
    // Query and every control command answer with the job, GUID first like
    // the JobQueue reply (the seed reads `attributes()[0]`).
    let status = Reply::Status(Box::new(sample_job())).to_xml();
    assert_eq!(
        status,
        "<cnpsXML GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\" Success=\"TRUE\">\
         <JobStatus Name=\"holiday.flv\" GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\" \
         State=\"Active\" Status=\"STARTED\" Progress.DWD=\"42\" User=\"\" \
         SourceDescription=\"holiday.flv\" AgentIP=\"127.0.0.1\" Priority.DWD=\"100\" \
         CheckInTime=\"11/25/26 09:30:00\" StartTime=\"11/25/26 09:30:01\" \
         CheckInTime_CNLT=\"2026-11-25 09:30:00\" StartTime_CNLT=\"2026-11-25 09:30:01\"/>\
         </cnpsXML>"
    );
    assert_eq!(
        Reply::Removed { guid: guid() }.to_xml(),
        "<cnpsXML GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\" Success=\"TRUE\"/>"
    );
    assert_eq!(
        Reply::JobList {
            guids: vec![guid()]
        }
        .to_xml(),
        "<cnpsXML Success=\"TRUE\"><JobList>\
         <Job_0 GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\"/></JobList></cnpsXML>"
    );
    assert_eq!(
        Reply::Node(sample_node()).to_xml(),
        "<cnpsXML Success=\"TRUE\"><NodeStatus Name=\"videoshare\" IP=\"127.0.0.1\" \
         Enabled.DWD=\"1\" Priority.DWD=\"100\" Slots.DWD=\"2\" FreeSlots.DWD=\"1\" \
         RunningJobs.DWD=\"1\" QueuedJobs.DWD=\"3\"/></cnpsXML>"
    );
}
