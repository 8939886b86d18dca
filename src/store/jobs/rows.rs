//! Rows of `jobs` and `destinations` as sqlx reads them, and their typed
//! form: every column checked once, here.

use std::path::PathBuf;

use super::{AudioSource, Destination, Job};
use crate::carbon::message::Trim;
use crate::store::{RowReader, StoreError};

#[derive(sqlx::FromRow)]
pub(super) struct JobRow {
    seq: i64,
    guid: String,
    name: String,
    user: String,
    status: String,
    progress: i64,
    description: String,
    failure: String,
    notes: String,
    priority: i64,
    source_path: String,
    audio_path: Option<String>,
    /// 0 or 1: an integer on both engines, so rows read alike.
    no_audio: i64,
    trim_in: Option<i64>,
    trim_out: Option<i64>,
    source_copies: String,
    check_in_time: i64,
    start_time: Option<i64>,
    completed_time: Option<i64>,
    node: Option<String>,
    attempts: i64,
    held: i64,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Job, StoreError> {
        let read = RowReader { table: "jobs" };
        Ok(Job {
            seq: row.seq,
            guid: read.guid(&row.guid)?,
            name: row.name,
            user: row.user,
            status: read.status(&row.status)?,
            progress: read.unsigned(row.progress)?,
            description: row.description,
            failure: row.failure,
            notes: read.json(&row.notes)?,
            priority: read.unsigned(row.priority)?,
            source_path: PathBuf::from(row.source_path),
            audio: match (row.no_audio != 0, row.audio_path) {
                (true, _) => AudioSource::Absent,
                (false, Some(path)) => AudioSource::File(PathBuf::from(path)),
                (false, None) => AudioSource::Same,
            },
            trim: match row.trim_in {
                Some(t) => Some(Trim {
                    in_ticks: read.unsigned(t)?,
                    out_ticks: row.trim_out.map(|o| read.unsigned(o)).transpose()?,
                }),
                None => None,
            },
            source_copies: read.json(&row.source_copies)?,
            check_in_time: row.check_in_time,
            start_time: row.start_time,
            completed_time: row.completed_time,
            node: row.node,
            attempts: read.unsigned(row.attempts)?,
            held: row.held != 0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct DestinationRow {
    preset_guid: String,
    dest_dir: String,
    base_name: String,
    output_path: Option<String>,
    name: Option<String>,
    copies: String,
    copied: String,
}

impl TryFrom<DestinationRow> for Destination {
    type Error = StoreError;

    fn try_from(row: DestinationRow) -> Result<Destination, StoreError> {
        let read = RowReader {
            table: "destinations",
        };
        Ok(Destination {
            preset_guid: read.guid(&row.preset_guid)?.into(),
            dest_dir: PathBuf::from(row.dest_dir),
            base_name: row.base_name,
            output_path: row.output_path.map(PathBuf::from),
            name: row.name,
            copies: read.json(&row.copies)?,
            copied: read.json(&row.copied)?,
        })
    }
}

pub(super) const COLUMNS: &str = "seq, guid, name, \"user\", status, progress, description, failure, notes, priority, \
                       source_path, audio_path, no_audio, trim_in, trim_out, source_copies, \
                       check_in_time, start_time, completed_time, node, attempts, \
                       CASE WHEN lease_expires IS NULL THEN 0 ELSE 1 END AS held";
