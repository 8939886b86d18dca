//! The blocking file work of a watched folder: reading a job file, the
//! sidecar and GUID files beside a file being processed, and whether
//! another process still writes a file. Plain `std::fs`: the intake calls
//! these through [`crate::fsutil::off_runtime`], never on the runtime.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::MAX_NAME;
use crate::carbon::message::JobQueue;
use crate::carbon::{Guid, Request, text};
use crate::fsutil;

/// Largest XML job file read.
const MAX_XML: u64 = 1 << 20;

/// Reads a `JobQueue` document, as the socket would (in its declared
/// encoding; undeclared, UTF-8 or else Latin-1).
pub(super) fn xml_job(file: &Path) -> Result<JobQueue, String> {
    let len = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
    if len > MAX_XML {
        return Err(format!(
            "the file is {len} bytes; a job file may have {MAX_XML} at most"
        ));
    }
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read it: {e}"))?;
    let text = text::decode(&bytes);
    match Request::parse(text.trim_start_matches('\u{feff}')).map_err(|e| e.to_string())? {
        Request::JobQueue(job) => Ok(job),
        other => Err(format!(
            "a job file must hold a JobQueue document; this is {}",
            other.task_type()
        )),
    }
}

/// A name short enough to carry a note beside it (`name.error.txt`): a
/// name over [`MAX_NAME`] bytes keeps its start and its extension.
pub(super) fn short_name(name: &OsStr) -> OsString {
    if name.len() <= MAX_NAME {
        return name.to_owned();
    }
    let text = name.to_string_lossy();
    let path = Path::new(text.as_ref());
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .filter(|e| e.len() <= 16)
        .unwrap_or_default();
    let mut stem: String = String::new();
    for c in text.chars() {
        if stem.len() + c.len_utf8() + extension.len() + 1 > MAX_NAME {
            break;
        }
        stem.push(c);
    }
    if extension.is_empty() {
        stem.into()
    } else {
        format!("{stem}.{extension}").into()
    }
}

/// Whether any process has `path` open for writing (Linux `/proc`): a copy
/// that pauses keeps its file open, which size checks alone cannot see.
/// Processes this one may not inspect are not seen.
pub(super) fn open_for_writing(path: &Path) -> bool {
    let Ok(target) = path.canonicalize() else {
        return false;
    };
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return false;
    };
    for process in processes.flatten() {
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|link| link == target) {
                let info = process.path().join("fdinfo").join(fd.file_name());
                let flags = std::fs::read_to_string(info)
                    .ok()
                    .and_then(|text| {
                        let line = text.lines().find_map(|l| l.strip_prefix("flags:"))?;
                        u32::from_str_radix(line.trim(), 8).ok()
                    })
                    .unwrap_or(0);
                // O_WRONLY = 1, O_RDWR = 2.
                if flags & 0o3 != 0 {
                    return true;
                }
            }
        }
    }
    false
}

/// `dir/name` → `dir/name.suffix`.
pub(super) fn sidecar(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    file.with_file_name(name)
}

/// Where the GUID of a file in `processing/` is kept until it is done.
pub(super) fn guid_file(file: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(file.file_name().unwrap_or_default());
    name.push(".guid");
    file.with_file_name(name)
}

/// The GUID recorded for `file`, recording a new one if it has none. Any
/// other trouble reading it is an error: guessing could submit twice.
pub(super) fn recorded_guid(file: &Path) -> std::io::Result<Guid> {
    let path = guid_file(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            if let Ok(guid) = text.trim().parse() {
                return Ok(guid);
            }
            // Cut short by a crash before the rename could not happen
            // (it is written atomically), so this is damage: say so.
            tracing::warn!(file = %path.display(), "unreadable job GUID; recording a new one");
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let guid = Guid::new_random();
    fsutil::write_atomic(&path, format!("{guid}\n").as_bytes())?;
    Ok(guid)
}

pub(super) fn forget_guid(file: &Path) {
    let _ = std::fs::remove_file(guid_file(file));
}
