//! The command-line Carbon client: `submit`, `jobs`, `job`, `presets` and
//! `probe`, each a few requests through [`carbon::Client`](crate::carbon::Client).
//!
//! Owns only argument checking and printing. It must not know how the
//! encoder works inside: everything goes over the socket, so these commands
//! drive any Carbon server, not only videoshare's.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::carbon::message::{
    Command, Criterion, Destination, JobInfo, JobQueue, JobStatusList, ModuleData, Operator, Source,
};
use crate::carbon::{Client, Guid, JobEntry, JobStatus};
use crate::config::{ConnectArgs, JobAction, JobArgs, JobsArgs, ProbeArgs, SubmitArgs};
use crate::encoder::paths::SEED_STREAMS;
use crate::encoder::preset::SEED_PRESET;

/// How often `submit --wait` asks for the job's status.
const FOLLOW_PERIOD: Duration = Duration::from_millis(250);

fn connect(args: &ConnectArgs) -> Client {
    Client::new(args.encoder.clone()).with_timeout(Duration::from_secs(args.timeout_secs))
}

fn parse_guid(text: &str, what: &str) -> anyhow::Result<Guid> {
    text.parse().with_context(|| {
        format!("{what} {text:?} is not a GUID like {{0F3C5E0A-2B7D-4C1E-9A57-3D2B8E6F1C40}}")
    })
}

/// A file as the encoder should be told about it: a path that exists here
/// is sent absolute (the encoder has no working directory of ours); any
/// other text is sent as written for the encoder to map (`c:\...`).
fn source_name(file: &str) -> String {
    match Path::new(file).canonicalize() {
        Ok(path) => path.to_string_lossy().into_owned(),
        Err(_) => file.to_owned(),
    }
}

/// `videoshare submit`.
pub async fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let mut presets = vec![match &args.preset {
        Some(text) => parse_guid(text, "--preset")?,
        None => SEED_PRESET,
    }];
    for text in &args.also {
        presets.push(parse_guid(text, "--also")?);
    }
    let dest = args.dest.clone().unwrap_or_else(|| SEED_STREAMS.to_owned());
    let job = JobQueue {
        job_name: args.name.clone(),
        user: args.user.clone(),
        sources: vec![Source {
            filename: source_name(&args.file),
        }],
        destinations: presets
            .iter()
            .map(|preset| Destination {
                preset_guid: Some(preset.to_string()),
                module_guid: Some(preset.to_string()),
                module_data: ModuleData {
                    path: Some(dest.clone()),
                    base_file_name: Some(args.base_name.clone()),
                },
            })
            .collect(),
        priority: args.priority,
    };
    let client = connect(&args.connect);
    let guid = client.queue(job).await?;
    println!("{guid}");
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let job = follow(&client, guid).await?;
    if job.status == JobStatus::Completed {
        // Outputs come from QueryInfo, which not every Carbon server has.
        match client.info(guid).await {
            Ok(info) => {
                for output in outputs(&info) {
                    println!("{output}");
                }
            }
            Err(e) => tracing::debug!(error = %e, "no QueryInfo; outputs not listed"),
        }
        eprintln!("{guid} COMPLETED");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{guid} ended {}: {}", job.status, job.description);
        Ok(ExitCode::FAILURE)
    }
}

/// Polls the job (with the seed's `JobStatusList` by GUID, which every
/// Carbon server answers) under a progress bar until it ends.
async fn follow(client: &Client, guid: Guid) -> anyhow::Result<JobEntry> {
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("{bar:40.cyan/blue} {pos:>3}% ETA {eta:>4} {msg}")
            .context("progress bar template")?,
    );
    loop {
        let job = client
            .list(JobStatusList::by_guid(guid))
            .await?
            .into_iter()
            .find(|j| j.guid == guid);
        let Some(job) = job else {
            bar.abandon();
            bail!("job {guid} no longer exists (it was removed)");
        };
        bar.set_position(u64::from(job.progress.min(100)));
        bar.set_message(job.status.to_string());
        if job.status.is_terminal() {
            bar.finish();
            return Ok(job);
        }
        tokio::time::sleep(FOLLOW_PERIOD).await;
    }
}

fn outputs(info: &JobInfo) -> impl Iterator<Item = &str> {
    info.destinations
        .iter()
        .filter_map(|d| d.output.as_ref().map(|o| o.filename.as_str()))
}

/// A job as `jobs --json` prints it.
#[derive(Serialize)]
struct JobView<'a> {
    guid: String,
    name: &'a str,
    status: &'a str,
    state: &'a str,
    progress: u32,
    priority: u32,
    user: &'a str,
    description: &'a str,
    source: &'a str,
    check_in_time: Option<&'a str>,
    start_time: Option<&'a str>,
    completed_time: Option<&'a str>,
}

impl<'a> From<&'a JobEntry> for JobView<'a> {
    fn from(j: &'a JobEntry) -> Self {
        JobView {
            guid: j.guid.to_string(),
            name: &j.name,
            status: j.status.as_str(),
            state: &j.state,
            progress: j.progress,
            priority: j.priority,
            user: &j.user,
            description: &j.description,
            source: &j.source_description,
            check_in_time: j.check_in_time_cnlt.as_deref(),
            start_time: j.start_time_cnlt.as_deref(),
            completed_time: j.completed_time_cnlt.as_deref(),
        }
    }
}

/// `videoshare jobs`.
pub async fn jobs(args: JobsArgs) -> anyhow::Result<ExitCode> {
    let mut criteria = Vec::new();
    if let Some(status) = &args.status {
        let status: JobStatus = status
            .parse()
            .map_err(|e| anyhow::anyhow!("--status: {e}"))?;
        criteria.push(Criterion {
            parameter: "Status".to_owned(),
            operator: Operator::Equal,
            value: status.as_str().to_owned(),
        });
    }
    let jobs = connect(&args.connect)
        .list(JobStatusList { criteria })
        .await?;
    if args.json {
        let views: Vec<JobView> = jobs.iter().map(JobView::from).collect();
        println!("{}", serde_json::to_string_pretty(&views)?);
    } else {
        println!(
            "{:<38}  {:<9}  {:>4}  {:>4}  NAME",
            "GUID", "STATUS", "%", "PRIO"
        );
        for j in &jobs {
            println!(
                "{:<38}  {:<9}  {:>4}  {:>4}  {}",
                j.guid.to_string(),
                j.status.as_str(),
                j.progress,
                j.priority,
                j.name
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `videoshare job GUID ACTION`.
pub async fn job(args: JobArgs) -> anyhow::Result<ExitCode> {
    let guid = parse_guid(&args.guid, "the job")?;
    let client = connect(&args.connect);
    let command = match args.action {
        JobAction::Info => {
            print_info(&client.info(guid).await?);
            return Ok(ExitCode::SUCCESS);
        }
        JobAction::Remove => {
            client.remove(guid).await?;
            println!("{guid} removed");
            return Ok(ExitCode::SUCCESS);
        }
        JobAction::Pause => Command::Pause,
        JobAction::Resume => Command::Resume,
        JobAction::Stop => Command::Stop,
        JobAction::Requeue => Command::Requeue,
        JobAction::Priority { priority } => Command::SetPriority(priority),
    };
    let job = client.command(guid, command).await?;
    println!(
        "{} {} {}% priority {}",
        job.guid, job.status, job.progress, job.priority
    );
    Ok(ExitCode::SUCCESS)
}

fn print_info(info: &JobInfo) {
    let j = &info.job;
    let line = |key: &str, value: &str| {
        if !value.is_empty() {
            println!("{key:<12} {value}");
        }
    };
    line("GUID", &j.guid.to_string());
    line("Name", &j.name);
    line("Status", j.status.as_str());
    line("Progress", &format!("{}%", j.progress));
    line("Priority", &j.priority.to_string());
    line("User", &j.user);
    line("Description", &j.description);
    line(
        "Queued",
        j.check_in_time_cnlt.as_deref().unwrap_or_default(),
    );
    line("Started", j.start_time_cnlt.as_deref().unwrap_or_default());
    line(
        "Completed",
        j.completed_time_cnlt.as_deref().unwrap_or_default(),
    );
    for source in &info.sources {
        line("Source", &source.filename);
    }
    for d in &info.destinations {
        line("Preset", &format!("{} {}", d.preset_guid, d.preset_name));
        line("Folder", d.module_data.path.as_deref().unwrap_or_default());
        if let Some(output) = &d.output {
            line("Output", &output.filename);
        }
    }
}

/// `videoshare presets`.
pub async fn presets(args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let profiles = connect(&args).profiles().await?;
    println!(
        "{:<38}  {:<10}  {:<9}  {:<22}  AUDIO",
        "GUID", "NAME", "CONTAINER", "VIDEO"
    );
    for p in &profiles {
        let audio = match (&p.audio_codec, p.audio_kbps) {
            (Some(codec), Some(kbps)) => format!("{codec} {kbps}k"),
            (Some(codec), None) => codec.clone(),
            _ => "none".to_owned(),
        };
        println!(
            "{:<38}  {:<10}  {:<9}  {:<22}  {audio}",
            p.guid.to_string(),
            p.name,
            p.container,
            format!(
                "{} {}x{} {}k",
                p.video_codec, p.width, p.height, p.video_kbps
            ),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `videoshare probe`.
pub async fn probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let source = connect(&args.connect)
        .evaluate(&source_name(&args.file))
        .await?;
    println!("File      {}", source.filename);
    println!("Format    {}", source.format);
    if let Some(v) = &source.description.video {
        let rate = v
            .frame_rate
            .map(|r| format!(" {r:.3} fps"))
            .unwrap_or_default();
        println!("Video     {} {}x{}{rate}", v.codec, v.width, v.height);
        if let Some(d) = v.duration {
            println!("Duration  {d:.3} s");
        }
    }
    if let Some(a) = &source.description.audio {
        let rate = a
            .sample_rate
            .map(|r| format!(" {r} Hz"))
            .unwrap_or_default();
        let channels = a.channels.map(|c| format!(" {c} ch")).unwrap_or_default();
        println!("Audio     {}{rate}{channels}", a.codec);
    }
    Ok(ExitCode::SUCCESS)
}
