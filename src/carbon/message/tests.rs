//! Tests of the message shapes: the seed's templates, the manual's request
//! forms, golden replies, round trips and the seed's reply budget.

use super::*;
use crate::carbon::{JobStatus, text};

/// The seed's submit template, exactly as printed in the article (its line
/// breaks inside `CML_P_Path` included).
const SEED_SUBMIT: &str = "<cnpsXML TaskType=\"JobQueue\">\n<Sources>\n<Module_0 Filename=\"c:\\videoshare\\uploaded\\holiday.flv\"/>\n</Sources>\n<Destinations><Module_0\nPresetGUID=\"{85DCCE70-0B4F-4328-86D1-5FC7756D9777}\"\nModuleGUID=\"{85DCCE70-0B4F-4328-86D1-5FC7756D9777}\"\nAssignedTags=\"\"><ModuleData CML_P_Path=\"C:\\Program\nFiles\\Adobe\\Flash Media Server\n3.5\\applications\\videoshare\\streams\\_definst_\" CML_P_BaseFileName=\"%s\"/><PostconversionTasks/><Filter_1/><Filter_0/></Module_0></Destinations>\n</cnpsXML>";

const SEED_STATUS: &str = "<cnpsXML TaskType=\"JobStatusList\">\n<Filter>\n<Criteria_0 Parameter =\"Guid\" Operator=\"EQUAL\" Value=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\" />\n</Filter>\n</cnpsXML>";

const GUID: &str = "{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}";

fn guid() -> Guid {
    GUID.parse().expect("guid")
}

fn sample_job() -> JobEntry {
    JobEntry {
        name: "holiday.flv".into(),
        guid: guid(),
        state: "NEX_JOB_STARTED".into(),
        status: JobStatus::Started,
        progress: 42,
        description: "Harbour".into(),
        user: "kim".into(),
        source_description: "holiday.flv".into(),
        agent_ip: "127.0.0.1".into(),
        priority: 100,
        delete_processed_source: false,
        check_in_time: Some("11/25/26 09:30:00".into()),
        start_time: Some("11/25/26 09:30:01".into()),
        completed_time: None,
        check_in_time_cnlt: Some("2026-11-25 09:30:00".into()),
        start_time_cnlt: Some("2026-11-25 09:30:01".into()),
        completed_time_cnlt: None,
        check_in_time_scm: Some("2026-11-25 08:30:00".into()),
        start_time_scm: Some("2026-11-25 08:30:01".into()),
        completed_time_scm: None,
        errors: Vec::new(),
        warnings: Vec::new(),
        fps: Some(50.5),
        speed: None,
        queue_position: None,
    }
}

fn parse(doc: &str) -> Request {
    Request::parse(doc).unwrap_or_else(|e| panic!("{doc}: {e}"))
}

#[test]
fn parses_the_seed_templates() {
    let Request::JobQueue(job) = parse(SEED_SUBMIT) else {
        panic!("not a JobQueue");
    };
    assert_eq!(
        job.sources,
        vec![Source::file("c:\\videoshare\\uploaded\\holiday.flv")]
    );
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
    let Request::JobStatusList(list) = parse(SEED_STATUS) else {
        panic!("not a JobStatusList");
    };
    assert_eq!(list, JobStatusList::by_guid(guid()));
}

#[test]
fn takes_the_manuals_forms_and_the_older_ones() {
    let child = parse(&format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n<cnpsXML CarbonAPIVer='1.2' TaskType='JobCommand'>\n  \
         <JobCommand Command='SetPriority' GUID='{GUID}' Priority.DWD='7'/>\n</cnpsXML>"
    ));
    let root = parse(&format!(
        "<cnpsXML TaskType=\"JobCommand\" Command=\"SetPriority\" Guid=\"{GUID}\" Priority.DWD=\"7\"/>"
    ));
    let expected = Request::JobCommand(JobCommand {
        guid: guid(),
        command: Command::SetPriority(7),
    });
    assert_eq!((child, root), (expected.clone(), expected));
    // The legacy JobType, with spaces in the value as one client sends.
    assert_eq!(
        parse("<cnpsXML JobType=\" JobList \"/>"),
        Request::JobList(ListSettings::default())
    );
    // No Operator means EQUAL; JobName is a filter parameter; ListSettings.
    let Request::JobStatusList(list) = parse(
        "<cnpsXML TaskType=\"JobStatusList\"><Filter><Criteria_0 Parameter=\"JobName\" Value=\"Test\"/></Filter>\
         <ListSettings OrderBy=\"CheckInTime_CNLT\" LimitStart.DWD=\"10\" LimitShow.DWD=\"-1\"/></cnpsXML>",
    ) else {
        panic!("not a list");
    };
    assert_eq!(list.criteria[0].operator, Operator::Equal);
    assert_eq!(
        list.settings,
        ListSettings {
            order_by: Some("CheckInTime_CNLT".into()),
            direction: None,
            start: 10,
            show: None,
        }
    );
    assert_eq!(
        list.settings.page(5000),
        10..1010,
        "at most MAX_LIST a page"
    );
    let Request::NodeCommand(node) = parse(
        "<cnpsXML TaskType=\"NodeCommand\"><NodeCommand NodeIP=\"10.1.4.20\" Command=\"SetNodeStatus\" Enabled.DWD=\"0\"/></cnpsXML>",
    ) else {
        panic!("not a NodeCommand");
    };
    assert_eq!(node.node_ip.as_deref(), Some("10.1.4.20"));
    assert_eq!(node.settings.enabled, Some(false));
    // Values in a <NodeStatus> child, as one public client sends them.
    let Request::NodeCommand(node) = parse(
        "<cnpsXML TaskType=\"NodeCommand\"><NodeCommand Command=\"SetNodeStatus\"><NodeStatus Enabled.DWD=\"1\" Priority.DWD=\"6\"/></NodeCommand></cnpsXML>",
    ) else {
        panic!("not a NodeCommand");
    };
    assert_eq!(
        (node.settings.enabled, node.settings.priority),
        (Some(true), Some(6))
    );
    // The priority on the root, as older clients put it.
    let Request::JobQueue(job) = parse(
        "<cnpsXML TaskType=\"JobQueue\" Priority.DWD=\"9\"><Sources><Module_0 Filename=\"/a\"/></Sources></cnpsXML>",
    ) else {
        panic!("not a JobQueue");
    };
    assert_eq!(job.priority, Some(9));
    // A destination named by ModuleGUID alone (some clients send no PresetGUID).
    let only_module = Destination {
        module_guid: Some(GUID.into()),
        ..Destination::default()
    };
    assert_eq!(only_module.preset(), Some(GUID));
}

#[test]
fn the_job_queue_forms_of_the_manual() {
    let doc = "<cnpsXML TaskType=\"JobQueue\" JobName=\"harbour\" Description=\"Harbour timelapse\" User=\"kim\">\
        <Sources><Module_0 MultiSource.DWD=\"1\"><ModuleData>\
          <StreamTypeTable StreamType_0.DWD=\"0\" StreamPtr_0.DWD=\"0\" StreamType_1.DWD=\"2\" StreamPtr_1.DWD=\"1\"/>\
          <SourceModules><MultiSrcModule_0 Filename=\"v.mov\"/><MultiSrcModule_1 Filename=\"a.wav\"/></SourceModules>\
        </ModuleData><InOutPoints Inpoint_0.QWD=\"54000000\" OutPoint_0.QWD=\"-1\"/></Module_0></Sources>\
        <Destinations><Module_0 PresetGUID=\"{0B7E51C4-2D9A-4E63-B8F0-71A3C6D29E15}\" DestinationName=\"web\">\
          <ModuleData FullUNCPath=\"\\\\media01\\out\" CML_P_BaseFileName=\"%s_web\"/>\
          <PostconversionTasks><FileCopy_0 TargetFolder=\"\\\\archive\\web\" OverWrite.DWD=\"1\"/></PostconversionTasks>\
        </Module_0></Destinations><ProjectSettings Priority.DWD=\"7\" TempDir=\"c:\\tmp\"/></cnpsXML>";
    let Request::JobQueue(job) = parse(doc) else {
        panic!("not a JobQueue");
    };
    assert_eq!(job.description.as_deref(), Some("Harbour timelapse"));
    let source = &job.sources[0];
    let SourceFile::Multi(multi) = &source.file else {
        panic!("not a MultiSource");
    };
    assert_eq!((multi.video, multi.audio), (Track::Master, Track::From(1)));
    assert_eq!(multi.file_of(multi.audio), Some("a.wav"));
    assert_eq!(
        source.trim,
        Some(Trim {
            in_ticks: 54_000_000,
            out_ticks: None
        })
    );
    let dest = &job.destinations[0];
    assert_eq!(dest.module_data.path.as_deref(), Some("\\\\media01\\out"));
    assert_eq!(dest.name.as_deref(), Some("web"));
    assert_eq!(dest.copies[0].target_folder, "\\\\archive\\web");
    assert!(dest.copies[0].overwrite);
    // What we write reads back the same (JobCommand Query's <Job>).
    let again = Request::JobQueue(job.clone()).to_xml();
    assert_eq!(parse(&again), Request::JobQueue(job));
}

#[test]
fn forms_videoshare_does_not_carry_out_are_refused_by_name() {
    let job = |inner: &str, settings: &str| {
        format!(
            "<cnpsXML TaskType=\"JobQueue\"><Sources><Module_0 Filename=\"/a.mp4\" {inner}</Sources>\
             <Destinations><Module_0 PresetGUID=\"{GUID}\"/></Destinations>{settings}</cnpsXML>"
        )
    };
    for (doc, named) in [
        (
            job("RemoteFTPFilename=\"ftp://x/a\"/>", ""),
            "RemoteFTPFilename",
        ),
        (job("ComplexSource.DWD=\"1\"/>", ""), "ComplexSource"),
        (
            job("/>", "<ProjectSettings Stitching.DWD=\"1\"/>"),
            "Stitching",
        ),
        (
            job("/>", "<ProjectSettings AssignedTags=\"gpu\"/>"),
            "AssignedTags",
        ),
        (
            job(
                "><Filter_0><Module_0 PresetGUID=\"{x}\"/></Filter_0></Module_0>",
                "",
            ),
            "Filter_0",
        ),
        (
            job(
                "><PostconversionTasks><FTPUpload_0 RemoteFTPFolder=\"/\"/></PostconversionTasks></Module_0>",
                "",
            ),
            "FTPUpload_0",
        ),
        (
            job(
                "/>",
                "<Notify><PostTaskNotify><EmailNotify_0 Recipient=\"a@b\"/></PostTaskNotify></Notify>",
            ),
            "Notify",
        ),
        (
            job(
                "><InOutPoints Inpoint_0.QWD=\"0\" Outpoint_0.QWD=\"9\" Inpoint_1.QWD=\"20\"/></Module_0>",
                "",
            ),
            "more than one",
        ),
    ] {
        let err = Request::parse(&doc).expect_err(&doc).to_string();
        assert!(err.contains(named), "{doc}: {err}");
    }
    let exporter = format!(
        "<cnpsXML TaskType=\"JobQueue\"><Sources><Module_0 Filename=\"/a.mp4\"/></Sources><Destinations>\
         <Module_0 PresetGUID=\"{GUID}\"><ModuleData CML_P_Path=\"/o\" CML_V_BitRate.DWD=\"9000\"/></Module_0>\
         </Destinations></cnpsXML>"
    );
    // Exporter settings are taken, and named as not applied.
    let Request::JobQueue(taken) = parse(&exporter) else {
        panic!("not a JobQueue");
    };
    assert_eq!(
        taken.all_unapplied(),
        vec!["Destinations/Module_0 ModuleData CML_V_BitRate.DWD=\"9000\"".to_owned()]
    );
    // Blank ones ask for nothing (the seed sends them).
    assert!(
        Request::parse(&job(
            "AssignedTags=\"\"><Filter_0/><PostconversionTasks/></Module_0>",
            ""
        ))
        .is_ok()
    );
    let unserved = Request::parse("<cnpsXML TaskType=\"WatchCreate\"/>").expect_err("unserved");
    assert!(unserved.to_string().contains("not served"), "{unserved}");
    let many: String = (0..65)
        .map(|i| format!("<Module_{i} Filename=\"/a\"/>"))
        .collect();
    let err = Request::parse(&format!(
        "<cnpsXML TaskType=\"JobQueue\"><Sources>{many}</Sources></cnpsXML>"
    ))
    .expect_err("too many");
    assert!(err.to_string().contains("at most 64"), "{err}");
}

#[test]
fn golden_replies_in_the_manuals_shapes() {
    // GUID first: the seed reads attributes()[0].
    assert_eq!(
        Reply::Queued { guid: guid() }.to_xml(),
        format!("<Reply GUID=\"{GUID}\" Success=\"TRUE\"/>")
    );
    assert_eq!(
        Reply::Failed {
            error: "unknown preset \"x\"".into()
        }
        .to_xml(),
        "<Reply Success=\"FALSE\" Error=\"unknown preset &quot;x&quot;\"/>"
    );
    let job = JobEntry {
        errors: vec!["no sound".into()],
        status: JobStatus::Error,
        ..sample_job()
    };
    let xml = Reply::StatusList(StatusList {
        jobs: vec![job.clone()],
        total: 3,
    })
    .to_xml();
    assert_eq!(
        xml,
        format!(
            "<Reply Success=\"TRUE\"><JobStatusList NrOfJobs.DWD=\"1\" TotalNrOfJobs.DWD=\"3\">\
             <Job_0 Name=\"holiday.flv\" GUID=\"{GUID}\" State=\"NEX_JOB_ERROR\" Status=\"ERROR\" \
             Progress.DWD=\"42\" Description=\"Harbour\" User=\"kim\" SourceDescription=\"holiday.flv\" \
             AgentIP=\"127.0.0.1\" Guid=\"{GUID}\" Priority.DWD=\"100\" DeleteProcessedSource.DWD=\"0\" \
             CheckInTime=\"11/25/26 09:30:00\" CheckInTime_CNLT=\"2026-11-25 09:30:00\" \
             CheckInTime_SCM=\"2026-11-25 08:30:00\" StartTime=\"11/25/26 09:30:01\" \
             StartTime_CNLT=\"2026-11-25 09:30:01\" StartTime_SCM=\"2026-11-25 08:30:01\" FPS.DBL=\"50.5\">\
             <Failures><Warnings/><Errors><Error_0 Error=\"no sound\"/></Errors></Failures></Job_0>\
             </JobStatusList></Reply>"
        )
    );
    let Reply::StatusList(back) = Reply::parse(&xml, ReplyKind::StatusList).expect("parses") else {
        panic!("not a list");
    };
    assert_eq!(
        (back.jobs[0].clone(), back.total),
        (
            JobEntry {
                state: "NEX_JOB_ERROR".into(),
                ..job
            },
            3
        )
    );
    let info = Reply::Info(Box::new(JobInfo {
        job: sample_job(),
        sources: vec!["/data/uploaded/holiday.flv".into()],
        destinations: vec![DestinationInfo {
            preset_guid: guid().into(),
            preset_name: "H.264".into(),
            name: Some("web".into()),
            path: "/data/streams".into(),
            base_name: "holiday".into(),
            target_files: vec!["/data/streams/holiday.mp4".into()],
        }],
    }));
    let xml = info.to_xml();
    assert!(
        xml.starts_with(&format!(
            "<Reply Success=\"TRUE\"><JobInfo Name=\"holiday.flv\" GUID=\"{GUID}\""
        )),
        "{xml}"
    );
    assert_eq!(Reply::parse(&xml, ReplyKind::Info).expect("parses"), info);
}

#[test]
fn every_reply_reads_back() {
    let replies = [
        (Reply::Queued { guid: guid() }, ReplyKind::Queued),
        (
            Reply::JobList(JobListing {
                jobs: vec![(guid(), "a".into())],
            }),
            ReplyKind::JobList,
        ),
        (
            Reply::Job(Box::new({
                let mut job = JobQueue::single("/a.mp4", guid().into(), "/out");
                job.destinations[0].target_files = vec!["/out/a.mp4".into()];
                job
            })),
            ReplyKind::Job,
        ),
        (
            Reply::Profiles {
                profiles: vec![Profile {
                    guid: guid().into(),
                    name: "Web".into(),
                    category: "Destination".into(),
                    description: "H.264".into(),
                    flags: 7,
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
            ReplyKind::Profiles,
        ),
        (
            Reply::Version(VersionInfo {
                version: "videoshare ver. 00.01.00.00".into(),
                product: "videoshare".into(),
                api_version: API_VERSION.into(),
            }),
            ReplyKind::Version,
        ),
        (
            Reply::Roles {
                role: "SERVER".into(),
            },
            ReplyKind::Roles,
        ),
        (
            Reply::Nodes {
                ips: vec!["127.0.0.1".into(), "10.0.0.2".into()],
            },
            ReplyKind::Nodes,
        ),
        (
            Reply::ServerNode(NodeStatus {
                enabled: true,
                priority: 5,
                slots: 4,
                free_slots: 1,
                name: "videoshare".into(),
                ip: "127.0.0.1".into(),
                running_jobs: 3,
                queued_jobs: 9,
                state: "draining".into(),
                note: String::new(),
                lease_expiries: 2,
            }),
            ReplyKind::Node,
        ),
        (
            Reply::Properties(NodeProperties {
                version: "00.01.00.00".into(),
                tags: String::new(),
            }),
            ReplyKind::Properties,
        ),
        (
            Reply::Failed {
                error: "é & <x>".into(),
            },
            ReplyKind::Info,
        ),
    ];
    for (reply, kind) in replies {
        let payload = reply.to_payload();
        assert!(payload.is_ascii(), "{reply:?}");
        let back = Reply::parse(&text::decode(&payload), kind).expect("parses");
        assert_eq!(back, reply);
    }
}

#[test]
fn the_older_cnpsxml_reply_shapes_still_read() {
    let status = format!(
        "<cnpsXML GUID=\"{GUID}\" Success=\"TRUE\"><JobStatus Name=\"a\" GUID=\"{GUID}\" State=\"Active\" \
         Status=\"STARTED\" Progress.DWD=\"42\"/></cnpsXML>"
    );
    let Reply::Info(info) = Reply::parse(&status, ReplyKind::Info).expect("reads") else {
        panic!("not info");
    };
    assert_eq!(
        (info.job.status, info.job.progress),
        (JobStatus::Started, 42)
    );
    let old_info = format!(
        "<cnpsXML GUID=\"{GUID}\" Success=\"TRUE\"><JobInfo><JobStatus GUID=\"{GUID}\" Status=\"COMPLETED\"/>\
         <Destinations><Module_0 PresetGUID=\"{GUID}\"><ModuleData CML_P_Path=\"/s\"/><Output Filename=\"/s/a.mp4\"/></Module_0></Destinations>\
         </JobInfo></cnpsXML>"
    );
    let Reply::Info(info) = Reply::parse(&old_info, ReplyKind::Info).expect("reads") else {
        panic!("not info");
    };
    assert_eq!(
        info.destinations[0].target_files,
        vec!["/s/a.mp4".to_owned()]
    );
    // A server that writes only the legacy State.
    let legacy = format!(
        "<Reply Success=\"TRUE\"><JobInfo GUID=\"{GUID}\" State=\"NEX_JOB_QUEUE\"/></Reply>"
    );
    let Reply::Info(info) = Reply::parse(&legacy, ReplyKind::Info).expect("reads") else {
        panic!("not info");
    };
    assert_eq!(info.job.status, JobStatus::Queued);
}

#[test]
fn long_fields_are_shortened_to_fit_the_seed_budget() {
    let mut job = sample_job();
    job.name = "ü&<".repeat(800);
    job.source_description = "日本語".repeat(300);
    job.description = "x".repeat(5000);
    job.user = "u".repeat(2000);
    job.errors = vec!["e".repeat(3000)];
    let payload = one_job_reply(finished(job));
    let Reply::StatusList(list) =
        Reply::parse(&text::decode(&payload), ReplyKind::StatusList).expect("parses")
    else {
        panic!("not a status list");
    };
    let job = &list.jobs[0];
    assert!(job.name.ends_with(ELLIPSIS) && job.name.starts_with("ü&<"));
    assert!(job.errors[0].ends_with(ELLIPSIS) && job.errors[0].len() > 20);
    assert_eq!(job.status, JobStatus::Started);
    let failed = Reply::Failed {
        error: "<".repeat(3000),
    }
    .to_payload();
    assert!(failed.len() <= SEED_REPLY_BUDGET);
    // However many failure items a record has.
    one_job_reply(finished(JobEntry {
        warnings: (0..20).map(|i| format!("warning {i}")).collect(),
        errors: (0..20).map(|i| format!("error {i}")).collect(),
        ..sample_job()
    }));
}

/// `job` with every time set (the longest record).
fn finished(job: JobEntry) -> JobEntry {
    JobEntry {
        completed_time: Some("11/25/26 09:31:00".into()),
        completed_time_cnlt: Some("2026-11-25 09:31:00".into()),
        completed_time_scm: Some("2026-11-25 08:31:00".into()),
        ..job
    }
}

/// The seed's one-job reply for `job`, checked against the budget.
fn one_job_reply(job: JobEntry) -> Vec<u8> {
    let payload = Reply::StatusList(StatusList {
        jobs: vec![job],
        total: 1,
    })
    .to_payload();
    assert!(
        payload.len() <= SEED_REPLY_BUDGET,
        "{} bytes",
        payload.len()
    );
    payload
}

#[test]
fn refuses_bad_documents_with_reasons() {
    for (doc, reason) in [
        ("<cnpsXML TaskType=\"JobQueue\"><Sources>", "malformed"),
        ("", "no root"),
        ("<other TaskType=\"JobQueue\"/>", "<cnpsXML>"),
        ("<cnpsXML/>", "no TaskType"),
        ("<cnpsXML TaskType=\"Reboot\"/>", "expected one of JobQueue"),
        (
            "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><cnpsXML TaskType=\"JobQueue\"/>",
            "DTD",
        ),
        (
            "<cnpsXML TaskType=\"JobStatusList\"><Filter><Criteria_0 Parameter=\"Guid\" Operator=\"NEAR\" Value=\"x\"/></Filter></cnpsXML>",
            "NEAR",
        ),
        (
            "<cnpsXML TaskType=\"JobCommand\"><JobCommand Command=\"Pause\"/></cnpsXML>",
            "no GUID",
        ),
        (
            "<cnpsXML TaskType=\"JobCommand\"><JobCommand Command=\"SetPriority\" GUID=\"{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}\" Priority.DWD=\"high\"/></cnpsXML>",
            "Priority.DWD",
        ),
    ] {
        let err = Request::parse(doc).expect_err(doc).to_string();
        assert!(err.contains(reason), "{doc:?} gave {err}");
    }
}
