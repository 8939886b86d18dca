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
    Command, Criterion, Destination, JobInfo, JobQueue, JobStatusList, ModuleData, NodeCommand,
    NodeCommandKind, NodeSettings, Operator, Source, TICKS_PER_SECOND,
};
use crate::carbon::{Client, ClientError, Guid, JobEntry, JobStatus, PresetId};
use crate::config::{
    ConnectArgs, JobAction, JobArgs, JobsArgs, NodesAction, NodesArgs, ProbeArgs, SubmitArgs,
};
use crate::encoder::paths::SEED_STREAMS;
use crate::encoder::preset::SEED_PRESET;

/// How often `submit --wait` asks for the job's status.
const FOLLOW_PERIOD: Duration = Duration::from_millis(250);

/// Prints a line on stdout. A closed stdout (`videoshare jobs | head -1`)
/// ends the command quietly, as it does for other Unix tools.
fn out(line: impl std::fmt::Display) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{line}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("videoshare: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// Prints rows under a header, each column as wide as its widest cell.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out(padded.join("  ").trim_end());
    };
    line(header);
    for row in rows {
        line(std::array::from_fn(|i| row[i].as_str()));
    }
}

/// One connection per request: it works with every Carbon server (Carbon
/// Coder closes after each reply; videoshare's `--carbon` keeps it open).
fn connect(args: &ConnectArgs) -> Client {
    Client::one_per_request(args.encoder.clone())
        .with_timeout(Duration::from_secs(args.timeout_secs))
}

/// A client error with what to do about it, where that is clear.
fn explain(e: ClientError) -> anyhow::Error {
    let hint = match &e {
        ClientError::Connect { .. } => {
            "is `videoshare serve` (or `videoshare encoder`) running there? Name another \
             server with --encoder HOST:PORT"
        }
        ClientError::Frame(_) | ClientError::BadReply(_) => {
            "is --encoder the Carbon port (1547 by default), not the web portal's?"
        }
        ClientError::Timeout { .. } => "a busy server may need a longer --timeout-secs",
        _ => return e.into(),
    };
    anyhow::anyhow!("{e}\n  hint: {hint}")
}

fn parse_guid(text: &str, what: &str) -> anyhow::Result<Guid> {
    text.parse().map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// A path as the encoder should be told about it: one that exists here is
/// sent absolute (the encoder has no working directory of ours); an
/// absolute or Windows path that does not exist here is sent as written for
/// the encoder to map (`c:\videoshare\uploaded\a.flv`); a relative path
/// that does not exist here is a mistake.
fn encoder_path(path: &str, what: &str) -> anyhow::Result<String> {
    if let Ok(found) = Path::new(path).canonicalize() {
        return Ok(found.to_string_lossy().into_owned());
    }
    if Path::new(path).is_absolute() || crate::carbon::client_path::is_absolute_windows(path) {
        Ok(path.to_owned())
    } else {
        bail!(
            "{what} {path:?}: no such file or folder here (a path on the encoder's machine \
             must be absolute)"
        )
    }
}

/// `videoshare submit`.
pub async fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let mut presets = vec![match &args.preset {
        Some(text) => parse_guid(text, "--preset")?.into(),
        None => SEED_PRESET,
    }];
    for text in &args.also {
        let also: PresetId = parse_guid(text, "--also")?.into();
        if presets.contains(&also) {
            bail!(
                "--also {also}: that preset is already asked for (it would encode the same output twice)"
            );
        }
        presets.push(also);
    }
    let dest = match &args.dest {
        Some(dest) => encoder_path(dest, "--dest")?,
        None => SEED_STREAMS.to_owned(),
    };
    let source = encoder_path(&args.file, "FILE")?;
    let job = JobQueue {
        job_name: args.name.clone(),
        description: args.description.clone(),
        user: args.user.clone(),
        sources: vec![Source::file(source)],
        destinations: presets
            .iter()
            .map(|preset| Destination {
                preset_guid: Some(preset.to_string()),
                module_guid: Some(preset.to_string()),
                module_data: ModuleData {
                    path: Some(dest.clone()),
                    base_file_name: Some(args.base_name.clone()),
                },
                ..Destination::default()
            })
            .collect(),
        priority: args.priority,
        unapplied: Vec::new(),
    };
    let client = connect(&args.connect);
    let guid = client.queue(job).await.map_err(explain)?;
    out(guid);
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let job = follow(&client, guid).await?;
    if job.status == JobStatus::Completed {
        // Outputs come from QueryInfo, which not every Carbon server has.
        match client.info(guid).await {
            Ok(info) => {
                for output in outputs(&info) {
                    out(output);
                }
            }
            Err(e) => tracing::debug!(error = %e, "no QueryInfo; outputs not listed"),
        }
        eprintln!("{guid} COMPLETED");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{guid} ended {}: {}", job.status, job.failure());
        Ok(ExitCode::FAILURE)
    }
}

/// Polls the job (with the seed's `JobStatusList` by GUID, which every
/// Carbon server answers) under a progress bar until it ends.
async fn follow(client: &Client, guid: Guid) -> anyhow::Result<JobEntry> {
    let bar = ProgressBar::new(100);
    // No ETA until there is progress to estimate it from.
    let waiting = ProgressStyle::with_template("{bar:40.cyan/blue} {pos:>3}%          {msg}")
        .context("progress bar template")?;
    let encoding = ProgressStyle::with_template("{bar:40.cyan/blue} {pos:>3}% ETA {eta:>4} {msg}")
        .context("progress bar template")?;
    bar.set_style(waiting);
    let mut estimating = false;
    loop {
        let job = client
            .list(JobStatusList::by_guid(guid))
            .await
            .map_err(explain)?
            .into_iter()
            .find(|j| j.guid == guid);
        let Some(job) = job else {
            bar.abandon();
            bail!("job {guid} no longer exists (it was removed)");
        };
        if job.progress > 0 && !estimating {
            bar.set_style(encoding.clone());
            estimating = true;
        }
        bar.set_position(u64::from(job.progress.min(100)));
        bar.set_message(job.status.to_string());
        if job.status.is_terminal() {
            bar.finish();
            return Ok(job);
        }
        tokio::time::sleep(FOLLOW_PERIOD).await;
    }
}

/// Each destination's output (its first target file; copies follow it).
fn outputs(info: &JobInfo) -> impl Iterator<Item = &str> {
    info.destinations
        .iter()
        .filter_map(|d| d.target_files.first().map(String::as_str))
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
    failure: String,
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
            failure: j.failure(),
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
        .list_all(JobStatusList {
            criteria,
            ..JobStatusList::default()
        })
        .await
        .map_err(explain)?;
    if args.json {
        let views: Vec<JobView> = jobs.iter().map(JobView::from).collect();
        out(serde_json::to_string_pretty(&views)?);
    } else {
        let rows: Vec<[String; 5]> = jobs
            .iter()
            .map(|j| {
                [
                    j.guid.to_string(),
                    j.status.to_string(),
                    format!("{}%", j.progress),
                    j.priority.to_string(),
                    j.name.clone(),
                ]
            })
            .collect();
        table(["GUID", "STATUS", "DONE", "PRIORITY", "NAME"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// `videoshare job GUID ACTION`.
pub async fn job(args: JobArgs) -> anyhow::Result<ExitCode> {
    let guid = parse_guid(&args.guid, "GUID")?;
    let client = connect(&args.connect);
    let command = match args.action {
        JobAction::Info => {
            print_info(&client.info(guid).await.map_err(explain)?);
            return Ok(ExitCode::SUCCESS);
        }
        JobAction::Remove => {
            client.remove(guid).await.map_err(explain)?;
            out(format!("{guid} removed"));
            return Ok(ExitCode::SUCCESS);
        }
        JobAction::Pause => Command::Pause,
        JobAction::Resume => Command::Resume,
        JobAction::Stop => Command::Stop,
        JobAction::Requeue => Command::Requeue,
        JobAction::Priority { priority } => Command::SetPriority(priority),
    };
    let job = client.command(guid, command).await.map_err(explain)?;
    out(format!(
        "{} {} {}% priority {}",
        job.guid, job.status, job.progress, job.priority
    ));
    Ok(ExitCode::SUCCESS)
}

fn print_info(info: &JobInfo) {
    let j = &info.job;
    let line = |key: &str, value: &str| {
        if !value.is_empty() {
            out(format!("{key:<12} {value}"));
        }
    };
    line("GUID", &j.guid.to_string());
    line("Name", &j.name);
    line("Status", j.status.as_str());
    line("Progress", &format!("{}%", j.progress));
    line("Priority", &j.priority.to_string());
    line("User", &j.user);
    line("Description", &j.description);
    line("Failure", &j.failure());
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
        line("Source", source);
    }
    for d in &info.destinations {
        line("Preset", &format!("{} {}", d.preset_guid, d.preset_name));
        line("Destination", d.name.as_deref().unwrap_or_default());
        line("Folder", &d.path);
        for (i, file) in d.target_files.iter().enumerate() {
            line(if i == 0 { "Output" } else { "Copy" }, file);
        }
    }
}

/// `videoshare nodes`: a table of the farm's nodes, or one enabled or
/// disabled (the table of it after).
pub async fn nodes(args: NodesArgs) -> anyhow::Result<ExitCode> {
    let client = connect(&args.connect);
    let set = |node: &String, enabled: bool| {
        let command = NodeCommand {
            kind: NodeCommandKind::SetNodeStatus,
            node_ip: Some(node.clone()),
            settings: NodeSettings {
                enabled: Some(enabled),
                ..NodeSettings::default()
            },
        };
        // The server's view after it (SetNodeStatus answers with the
        // node's own, which has no free slots).
        let after = NodeCommand {
            kind: NodeCommandKind::GetServerNodeStatus,
            ..command.clone()
        };
        let client = &client;
        async move {
            client.node_command(command).await.map_err(explain)?;
            client.node_command(after).await.map_err(explain)
        }
    };
    let statuses = match &args.action {
        None | Some(NodesAction::List) => client.node_statuses().await.map_err(explain)?,
        Some(NodesAction::Enable { node }) => vec![set(node, true).await?],
        Some(NodesAction::Disable { node }) => vec![set(node, false).await?],
    };
    let rows: Vec<[String; 7]> = statuses
        .iter()
        .map(|n| {
            [
                n.name.clone(),
                n.ip.clone(),
                n.state.clone(),
                n.slots.to_string(),
                n.free_slots.to_string(),
                n.running_jobs.to_string(),
                n.note.clone(),
            ]
        })
        .collect();
    table(
        ["NODE", "IP", "STATE", "SLOTS", "FREE", "RUNNING", "NOTE"],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

/// `videoshare presets`.
pub async fn presets(args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let profiles = connect(&args).profiles().await.map_err(explain)?;
    let rows: Vec<[String; 5]> = profiles
        .iter()
        .map(|p| {
            let audio = match (&p.audio_codec, p.audio_kbps) {
                (Some(codec), Some(kbps)) => format!("{codec} {kbps}k"),
                (Some(codec), None) => codec.clone(),
                _ => "none".to_owned(),
            };
            [
                p.guid.to_string(),
                p.name.clone(),
                p.container.clone(),
                match (&p.video_codec, p.width, p.height, p.video_kbps) {
                    (Some(codec), Some(w), Some(h), Some(kbps)) => {
                        format!("{codec} {w}x{h} {kbps}k")
                    }
                    (Some(codec), ..) => codec.clone(),
                    _ => "none".to_owned(),
                },
                audio,
            ]
        })
        .collect();
    table(["GUID", "NAME", "CONTAINER", "VIDEO", "AUDIO"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// `videoshare probe`.
pub async fn probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let source = connect(&args.connect)
        .evaluate(&encoder_path(&args.file, "FILE")?)
        .await
        .map_err(explain)?;
    out(format!("File      {}", source.filename));
    out(format!("Format    {}", source.format));
    if let Some(ticks) = source.description.duration_ticks {
        let secs = ticks as f64 / TICKS_PER_SECOND as f64;
        out(format!("Duration  {secs:.3} s"));
    }
    if let Some(v) = &source.description.video {
        let rate = v
            .frame_rate()
            .map(|r| format!(" {r:.3} fps"))
            .unwrap_or_default();
        out(format!(
            "Video     {} {}x{}{rate} {}",
            v.codec, v.width, v.height, v.interlacing
        ));
    }
    if let Some(a) = &source.description.audio {
        out(format!(
            "Audio     {} {} Hz {} ch {} bit",
            a.codec, a.sample_rate, a.channels, a.sample_size
        ));
    }
    Ok(ExitCode::SUCCESS)
}
