//! The folder's file-system events (`notify`, inotify on Linux): they wake
//! the folder loop, and they say when a file was closed after being written
//! (`CLOSE_WRITE`), which is when a copy is complete. Events are trusted
//! only on a local file system: a network file system (NFS, SMB, …) does
//! not report another machine's writes, so there, and when the watcher
//! cannot start, the folder falls back to the settle test alone.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// What the events last said about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LastWrite {
    /// Created or written to, and not closed since.
    StillOpen,
    /// Closed after being written: complete unless written to again.
    Closed,
}

/// What the events said about the folder's files, by name. A file without
/// an entry (there before the watcher, moved in, or after lost events) is
/// left to the settle test.
#[derive(Debug, Default)]
pub(super) struct WriteEvents {
    files: Mutex<HashMap<OsString, LastWrite>>,
}

impl WriteEvents {
    /// What the events last said about `name`, if anything.
    pub(super) fn last_write(&self, name: &OsStr) -> Option<LastWrite> {
        self.files.lock().get(name).copied()
    }

    /// Takes in one event (or a watcher error: events may have been lost,
    /// so everything heard so far is forgotten).
    fn hear(&self, event: notify::Result<notify::Event>) {
        let mut files = self.files.lock();
        let event = match event {
            Ok(event) if !event.need_rescan() => event,
            _ => {
                files.clear();
                return;
            }
        };
        let now = match event.kind {
            EventKind::Create(CreateKind::File | CreateKind::Any)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                Some(LastWrite::StillOpen)
            }
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(LastWrite::Closed),
            // Gone, or renamed (a name moved in is not known to be closed).
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)) => None,
            _ => return,
        };
        for name in event.paths.iter().filter_map(|p| p.file_name()) {
            match now {
                Some(state) => files.insert(name.to_owned(), state),
                None => files.remove(name),
            };
        }
    }
}

/// A running watcher on one folder; dropping it stops the events.
pub(super) struct FolderEvents {
    _watcher: RecommendedWatcher,
    /// `None` when the folder is on a network file system.
    pub(super) writes: Option<Arc<WriteEvents>>,
}

/// Starts watching `folder`: every event sends on `wake` (a full channel
/// already means "look again"), and on a local file system the events are
/// kept in [`FolderEvents::writes`]. Blocking (the file system is asked).
pub(super) fn watch(folder: &Path, wake: mpsc::Sender<()>) -> notify::Result<FolderEvents> {
    let writes = Arc::new(WriteEvents::default());
    let heard = writes.clone();
    let mut watcher = notify::recommended_watcher(move |event| {
        heard.hear(event);
        let _ = wake.try_send(());
    })?;
    watcher.watch(folder, RecursiveMode::NonRecursive)?;
    let writes = if on_network_file_system(folder) {
        tracing::info!("network file system: files are taken by the settle time alone");
        None
    } else {
        Some(writes)
    };
    Ok(FolderEvents {
        _watcher: watcher,
        writes,
    })
}

/// Whether `folder` is on a file system whose other writers inotify cannot
/// see (NFS, SMB/CIFS, AFS, Coda, Ceph, 9p, FUSE such as sshfs). Unknown
/// counts as network: the settle test is the safe side.
fn on_network_file_system(folder: &Path) -> bool {
    const NETWORK: [u64; 9] = [
        0x6969,      // NFS
        0x517B,      // SMB
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x5346_414F, // AFS
        0x7375_7245, // Coda
        0x00C3_6400, // Ceph
        0x0102_1997, // 9p
        0x6573_5546, // FUSE
    ];
    match nix::sys::statfs::statfs(folder) {
        Ok(stat) => NETWORK.contains(&(stat.filesystem_type().0 as u64)),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::ingest::Contents;
    use crate::ingest::settle::Settling;

    /// With a settle time of an hour, only the close-write event can make a
    /// file complete: it must not be taken while open, and must be soon
    /// after it is closed.
    #[test]
    fn a_file_written_slowly_is_complete_only_once_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wake, _woken) = mpsc::channel(1);
        let events = watch(dir.path(), wake).expect("watcher");
        let writes = events.writes.clone().expect("tempdir is local");
        let mut settling = Settling::new(Duration::from_secs(3600));
        let mut complete =
            || settling.complete_files(dir.path(), &Contents::XmlJobs, Some(&writes));
        let mut file = std::fs::File::create(dir.path().join("job.xml")).expect("create");
        for piece in ["<cnpsXML ", "TaskType=\"JobQueue\">", "</cnpsXML>"] {
            file.write_all(piece.as_bytes()).expect("write");
            file.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(200));
            assert!(complete().is_empty(), "taken while still being written");
        }
        assert_eq!(
            writes.last_write(OsStr::new("job.xml")),
            Some(LastWrite::StillOpen)
        );
        drop(file);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let ready = complete();
            if !ready.is_empty() {
                assert_eq!(ready, [OsString::from("job.xml")]);
                break;
            }
            assert!(Instant::now() < deadline, "never complete after closing");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn lost_events_leave_files_to_the_settle_test() {
        let writes = WriteEvents::default();
        let path = Path::new("/in/a.mp4").to_owned();
        let closed = notify::Event::new(EventKind::Access(AccessKind::Close(AccessMode::Write)))
            .add_path(path.clone());
        writes.hear(Ok(closed));
        assert_eq!(
            writes.last_write(OsStr::new("a.mp4")),
            Some(LastWrite::Closed)
        );
        let written = notify::Event::new(EventKind::Modify(ModifyKind::Data(
            notify::event::DataChange::Any,
        )))
        .add_path(path);
        writes.hear(Ok(written));
        assert_eq!(
            writes.last_write(OsStr::new("a.mp4")),
            Some(LastWrite::StillOpen)
        );
        writes.hear(Ok(
            notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan)
        ));
        assert_eq!(writes.last_write(OsStr::new("a.mp4")), None);
    }
}
