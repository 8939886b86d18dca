//! The GUID sidecars: a file in `processing/` has its job GUID recorded in
//! a hidden `processing/.name.guid` *before* the job is submitted under it,
//! so a restart resubmits nothing and forgets nothing. Plain `std::fs`,
//! called through [`crate::fsutil::off_runtime`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::carbon::Guid;
use crate::fsutil;

/// Where the GUID of a file in `processing/` is kept until it is done.
fn guid_file(file: &Path) -> PathBuf {
    let mut name = OsString::from(".");
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

/// Removes the GUID recorded for `file` (done with, or a new file under a
/// name an old GUID was left for).
pub(super) fn forget_guid(file: &Path) {
    let _ = std::fs::remove_file(guid_file(file));
}

/// Removes GUIDs recorded in `processing` for files no longer there (a
/// crash between moving a file on and forgetting its GUID).
pub(super) fn forget_stale_guids(processing: &Path) {
    let Ok(entries) = std::fs::read_dir(processing) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(file) = name
            .to_str()
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| n.strip_suffix(".guid"))
        else {
            continue;
        };
        if fsutil::is_free(&processing.join(file)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_recorded_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.mp4");
        let first = recorded_guid(&file).expect("recorded");
        assert_eq!(recorded_guid(&file).expect("read back"), first);
        assert!(dir.path().join(".a.mp4.guid").is_file());
        forget_guid(&file);
        assert_ne!(recorded_guid(&file).expect("new"), first);
    }

    #[test]
    fn stale_guids_are_forgotten_and_live_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (live, gone) = (dir.path().join("live.mp4"), dir.path().join("gone.mp4"));
        std::fs::write(&live, "x").expect("write");
        let guid = recorded_guid(&live).expect("recorded");
        recorded_guid(&gone).expect("recorded");
        forget_stale_guids(dir.path());
        assert!(!dir.path().join(".gone.mp4.guid").exists());
        assert_eq!(recorded_guid(&live).expect("kept"), guid);
    }
}
