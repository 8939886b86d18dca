//! The XML intake: turns a `cnpsXML` file from an XML job folder into the
//! `JobQueue` the Carbon socket would have received. Plain `std::fs`, called
//! through [`crate::fsutil::off_runtime`]; knows nothing of folders or moves.

use std::path::Path;

use crate::carbon::message::{JobQueue, MessageError, TaskType};
use crate::carbon::{Request, text};

/// Largest XML job file read.
const MAX_XML: u64 = 1 << 20;

/// Why an XML job file is not a job (said in its `.error.txt`).
#[derive(Debug, thiserror::Error)]
pub enum XmlJobError {
    #[error("cannot read it: {0}")]
    Unreadable(#[from] std::io::Error),
    #[error("the file is {0} bytes; a job file may have {MAX_XML} at most")]
    TooLarge(u64),
    #[error("{0}")]
    Malformed(#[from] MessageError),
    #[error("a job file must hold a JobQueue document; this is {0}")]
    NotAJob(TaskType),
}

/// The job an XML job file in `processing/` stands for: its document, with
/// `User` set to `xml:<folder>` when the document names no user.
pub(super) fn xml_request(file: &Path) -> Result<JobQueue, XmlJobError> {
    let mut job = read_job_queue(file)?;
    // Say where it came from when the document does not.
    if job.user.as_deref().is_none_or(|u| u.trim().is_empty()) {
        let folder = file.parent().and_then(Path::parent).unwrap_or(file);
        job.user = Some(format!("xml:{}", folder.display()));
    }
    Ok(job)
}

/// Reads a `JobQueue` document, as the socket would (in its declared
/// encoding; undeclared, UTF-8 or else Latin-1).
fn read_job_queue(file: &Path) -> Result<JobQueue, XmlJobError> {
    let len = std::fs::metadata(file)?.len();
    if len > MAX_XML {
        return Err(XmlJobError::TooLarge(len));
    }
    let bytes = std::fs::read(file)?;
    let text = text::decode(&bytes);
    match Request::parse(text.trim_start_matches('\u{feff}'))? {
        Request::JobQueue(job) => Ok(job),
        other => Err(XmlJobError::NotAJob(other.task_type())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_files_must_be_job_queues() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("j.xml");
        std::fs::write(&file, "<cnpsXML TaskType=\"JobList\"/>").expect("write");
        assert!(
            read_job_queue(&file)
                .expect_err("not a job")
                .to_string()
                .contains("JobList")
        );
        std::fs::write(&file, "<cnpsXML TaskType=\"JobQueue\"><Sources>").expect("write");
        assert!(read_job_queue(&file).is_err());
        // Latin-1 bytes (not UTF-8) read as the socket reads them.
        let mut latin = b"<cnpsXML TaskType=\"JobQueue\" JobName=\"caf".to_vec();
        latin.extend([0xE9]);
        latin.extend(b"\"><Sources><Module_0 Filename=\"/a\"/></Sources></cnpsXML>");
        std::fs::write(&file, latin).expect("write");
        assert_eq!(
            read_job_queue(&file).expect("parses").job_name.as_deref(),
            Some("café")
        );
    }
}
