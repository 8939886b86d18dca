//! The keys that sign session cookies, kept in the data folder.
//!
//! `session.key` signs every new cookie. `videoshare rotate-session-key`
//! makes a new one and keeps the old as `session.key.previous`, which still
//! verifies cookies for one session lifetime after the rotation (its file
//! time), so nobody is signed out by a rotation: a cookie signed with the
//! old key is re-signed with the new one on its next request. A key file
//! that other users can read is refused at start.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum_extra::extract::cookie::Key;

/// The current key's file name in the data folder.
pub const KEY_FILE: &str = "session.key";
/// The rotated-out key's file name.
pub const PREVIOUS_FILE: &str = "session.key.previous";

/// The signing key and, during a rotation's grace period, the one before.
#[derive(Clone)]
pub struct SessionKeys {
    pub current: Key,
    pub previous: Option<Key>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    /// Reads the keys in `dir`, creating the current one (mode 0600) when
    /// there is none yet. The previous key counts only within `grace` of
    /// its rotation.
    pub fn load(dir: &Path, grace: Duration) -> anyhow::Result<SessionKeys> {
        let current = load_or_create(&dir.join(KEY_FILE))?;
        let previous_path = dir.join(PREVIOUS_FILE);
        let previous = match rotated_at(&previous_path)? {
            Some(at) if age(at) < grace => Some(read_key(&previous_path)?),
            Some(_) => {
                tracing::info!(file = %previous_path.display(), "the previous session key's grace period is over");
                None
            }
            None => None,
        };
        Ok(SessionKeys { current, previous })
    }

    /// Keys that verify but were never written anywhere (tests, tools).
    pub fn ephemeral() -> SessionKeys {
        SessionKeys {
            current: Key::generate(),
            previous: None,
        }
    }
}

/// Puts a new key in place in `dir`, keeping the current one as the
/// previous key (replacing an older previous key). A running portal keeps
/// its keys until it restarts.
pub fn rotate(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(KEY_FILE);
    read_key(&path)?;
    let previous = dir.join(PREVIOUS_FILE);
    let fresh = dir.join(format!("{KEY_FILE}.new"));
    let _ = std::fs::remove_file(&fresh);
    crate::fsutil::write_new_private(&fresh, Key::generate().master())
        .with_context(|| format!("cannot write {}", fresh.display()))?;
    std::fs::rename(&path, &previous)
        .with_context(|| format!("cannot move {} aside", path.display()))?;
    // The file time says when the grace period started.
    std::fs::File::options()
        .write(true)
        .open(&previous)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .with_context(|| format!("cannot date {}", previous.display()))?;
    std::fs::rename(&fresh, &path)
        .with_context(|| format!("cannot put {} in place", path.display()))?;
    Ok(path)
}

fn load_or_create(path: &Path) -> anyhow::Result<Key> {
    match read_key(path) {
        Err(e) if is_missing(&e) => {
            match crate::fsutil::write_new_private(path, Key::generate().master()) {
                Ok(()) => {}
                // Another process won the race: use its key.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot write {}", path.display()));
                }
            }
            read_key(path)
        }
        other => other,
    }
}

fn is_missing(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// Reads a key file, refusing one that other users could read.
fn read_key(path: &Path) -> anyhow::Result<Key> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "{} can be read by other users (mode {mode:o}): anyone who reads it can sign in \
             as any user. Run `chmod 600 {}` and start again.",
            path.display(),
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Key::try_from(bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("{} is not a session key: {e}", path.display()))
}

fn rotated_at(path: &Path) -> anyhow::Result<Option<SystemTime>> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(meta.modified()?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn age(at: SystemTime) -> Duration {
    SystemTime::now().duration_since(at).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const DAY: Duration = Duration::from_secs(86_400);

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn the_key_is_created_private_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = SessionKeys::load(dir.path(), DAY).expect("create");
        let again = SessionKeys::load(dir.path(), DAY).expect("load");
        assert_eq!(first.current.master(), again.current.master());
        assert_eq!(mode(&dir.path().join(KEY_FILE)), 0o600);
        assert!(first.previous.is_none());
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        SessionKeys::load(dir.path(), DAY).expect("create");
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let refused = SessionKeys::load(dir.path(), DAY).expect_err("readable by others");
        assert!(refused.to_string().contains("chmod 600"), "{refused}");
    }

    #[test]
    fn rotation_keeps_the_old_key_for_the_grace_period() {
        let dir = tempfile::tempdir().expect("tempdir");
        let before = SessionKeys::load(dir.path(), DAY).expect("create");
        rotate(dir.path()).expect("rotate");
        let after = SessionKeys::load(dir.path(), DAY).expect("load");
        assert_ne!(after.current.master(), before.current.master());
        let previous = after.previous.expect("previous key kept");
        assert_eq!(previous.master(), before.current.master());
        assert_eq!(mode(&dir.path().join(PREVIOUS_FILE)), 0o600);
        assert_eq!(mode(&dir.path().join(KEY_FILE)), 0o600);
        // After the grace period the old key verifies nothing.
        let later = SessionKeys::load(dir.path(), Duration::ZERO).expect("load");
        assert!(later.previous.is_none());
    }
}
