//! Turning the paths clients send into local paths the encoder may touch.
//!
//! Clients name files as the original Windows server saw them
//! (`c:\videoshare\uploaded\clip.flv`). A table of prefix rewrites maps them
//! to local folders; then every path must lie inside one of the allowed roots
//! once symlinks are resolved. [`SafePath`] can only be made here, so code
//! holding one knows the check was done.

use std::path::{Component, Path, PathBuf};

use crate::carbon::client_path::PathKind;

/// A client-side prefix and the local folder it stands for.
#[derive(Debug, Clone)]
pub struct PathMapping {
    pub from: String,
    pub to: PathBuf,
}

impl PathMapping {
    pub fn new(from: impl Into<String>, to: impl Into<PathBuf>) -> Self {
        PathMapping {
            from: from.into(),
            to: to.into(),
        }
    }
}

/// Where the seed's page put uploads, as its encoder saw them.
pub const SEED_UPLOADED: &str = "c:\\videoshare\\uploaded";

/// The seed's Flash Media Server streams folder, where its encodes went.
pub const SEED_STREAMS: &str = "C:\\Program Files\\Adobe\\Flash Media Server 3.5\\applications\\videoshare\\streams\\_definst_";

/// A canonical local path inside the allowed roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath(PathBuf);

impl SafePath {
    pub fn as_path(&self) -> &Path {
        &self.0
    }

    pub fn into_path_buf(self) -> PathBuf {
        self.0
    }
}

/// Why a client's path was refused. Each names the rule it broke.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("the path contains a NUL character")]
    Nul,
    #[error("{} contains `..`, which is not allowed", quoted(.0))]
    ParentDir(String),
    #[error(
        "{} is a Windows path with no mapping to a local folder (add a [[path_mapping]] \
         to the config file)",
        quoted(.0)
    )]
    Unmapped(String),
    #[error("{} is relative; send an absolute path", quoted(.0))]
    Relative(String),
    #[error("{} does not exist", quoted(.0))]
    NotFound(String),
    #[error(
        "{} is outside the folders this encoder may use (its uploaded/ and streams/ \
         folders and the configured roots): copy the file into uploaded/, or add its folder \
         to `roots` in the config file (or start the encoder with --root DIR)",
        quoted(.0)
    )]
    OutsideRoots(String),
    #[error("{} is not a regular file", quoted(.0))]
    NotAFile(String),
    #[error("{} is not a folder", quoted(.0))]
    NotADirectory(String),
    #[error("cannot read {}: {reason}", quoted(path))]
    Unreadable { path: String, reason: String },
}

/// A client path in quotes as written (Windows backslashes single), with
/// control characters made visible.
fn quoted(path: &str) -> String {
    let shown: String = path
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    format!("\"{shown}\"")
}

/// One prefix rewrite, split into components for matching.
#[derive(Debug, Clone)]
struct Rule {
    prefix: Vec<String>,
    /// A rule matches only paths of its own kind: a UNC prefix never
    /// rewrites a POSIX path that happens to share its names.
    kind: PathKind,
    to: PathBuf,
}

/// The mapping table and the allowed roots.
#[derive(Debug, Clone)]
pub struct PathPolicy {
    rules: Vec<Rule>,
    roots: Vec<PathBuf>,
}

/// Splits on both separators, dropping empty and `.` parts.
fn components(path: &str) -> Vec<&str> {
    path.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

impl PathPolicy {
    /// A policy allowing `roots` (which must exist) and applying `mappings`
    /// in order, the longest matching prefix winning.
    pub fn new(roots: &[PathBuf], mappings: &[PathMapping]) -> std::io::Result<Self> {
        let roots = roots
            .iter()
            .map(std::fs::canonicalize)
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut rules: Vec<Rule> = mappings
            .iter()
            .map(|m| Rule {
                prefix: components(&m.from).into_iter().map(str::to_owned).collect(),
                kind: PathKind::of(&m.from),
                to: m.to.clone(),
            })
            .collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(PathPolicy { rules, roots })
    }

    /// The seed deployment's two folders, mapped to local ones.
    pub fn seed_mappings(uploaded: &Path, streams: &Path) -> Vec<PathMapping> {
        vec![
            PathMapping::new(SEED_UPLOADED, uploaded),
            PathMapping::new(SEED_STREAMS, streams),
        ]
    }

    /// A source file: must exist, be a regular file and lie inside the roots.
    ///
    /// Blocking (it reads the file system): async code calls the
    /// resolvers through [`crate::fsutil::off_runtime`].
    pub fn resolve_file(&self, client_path: &str) -> Result<SafePath, PathError> {
        let path = self.resolve(client_path)?;
        if !path.as_path().is_file() {
            return Err(PathError::NotAFile(client_path.to_owned()));
        }
        Ok(path)
    }

    /// A destination folder: must exist, be a folder and lie inside the roots.
    pub fn resolve_dir(&self, client_path: &str) -> Result<SafePath, PathError> {
        let path = self.resolve(client_path)?;
        if !path.as_path().is_dir() {
            return Err(PathError::NotADirectory(client_path.to_owned()));
        }
        Ok(path)
    }

    fn resolve(&self, client_path: &str) -> Result<SafePath, PathError> {
        let trimmed = client_path.trim();
        if trimmed.is_empty() {
            return Err(PathError::Empty);
        }
        if trimmed.contains('\0') {
            return Err(PathError::Nul);
        }
        let parts = components(trimmed);
        if parts.contains(&"..") {
            return Err(PathError::ParentDir(client_path.to_owned()));
        }
        let kind = PathKind::of(trimmed);
        let local = match self.map(&parts, kind) {
            Some(mapped) => mapped,
            None if kind != PathKind::Posix => {
                return Err(PathError::Unmapped(client_path.to_owned()));
            }
            None if !trimmed.starts_with('/') => {
                return Err(PathError::Relative(client_path.to_owned()));
            }
            None => std::iter::once("/").chain(parts.iter().copied()).collect(),
        };
        let canonical = std::fs::canonicalize(&local).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PathError::NotFound(client_path.to_owned()),
            _ => PathError::Unreadable {
                path: client_path.to_owned(),
                reason: e.to_string(),
            },
        })?;
        // Components of a canonical path are never `..`, so `starts_with` is exact.
        if !self.roots.iter().any(|root| canonical.starts_with(root)) {
            return Err(PathError::OutsideRoots(client_path.to_owned()));
        }
        debug_assert!(canonical.components().all(|c| c != Component::ParentDir));
        Ok(SafePath(canonical))
    }

    fn map(&self, parts: &[&str], kind: PathKind) -> Option<PathBuf> {
        self.rules.iter().find_map(|rule| {
            if parts.len() < rule.prefix.len() || rule.kind != kind {
                return None;
            }
            let matches = rule.prefix.iter().zip(parts).all(|(want, got)| {
                if kind.ignores_case() {
                    want.eq_ignore_ascii_case(got)
                } else {
                    want == got
                }
            });
            matches.then(|| {
                let mut local = rule.to.clone();
                local.extend(&parts[rule.prefix.len()..]);
                local
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        uploaded: PathBuf,
        streams: PathBuf,
        outside: PathBuf,
        policy: PathPolicy,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let uploaded = dir.path().join("uploaded");
        let streams = dir.path().join("streams");
        let outside = dir.path().join("outside");
        for d in [&uploaded, &streams, &outside] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(uploaded.join("clip.mp4"), "x").expect("write");
        std::fs::write(outside.join("secret.mp4"), "x").expect("write");
        let policy = PathPolicy::new(
            &[uploaded.clone(), streams.clone()],
            &PathPolicy::seed_mappings(&uploaded, &streams),
        )
        .expect("policy");
        Fixture {
            _dir: dir,
            uploaded,
            streams,
            outside,
            policy,
        }
    }

    #[test]
    fn maps_the_seed_windows_paths() {
        let f = fixture();
        let file = f
            .policy
            .resolve_file("C:\\VideoShare\\uploaded\\clip.mp4")
            .expect("mapped");
        assert_eq!(
            file.as_path(),
            f.uploaded.join("clip.mp4").canonicalize().expect("c")
        );
        let dir = f
            .policy
            .resolve_dir("C:\\Program Files\\Adobe\\Flash Media Server 3.5\\applications\\videoshare\\streams\\_definst_")
            .expect("mapped");
        assert_eq!(dir.as_path(), f.streams.canonicalize().expect("c"));
    }

    #[test]
    fn a_rule_rewrites_only_paths_of_its_own_kind() {
        let f = fixture();
        let mappings = [
            PathMapping::new("\\\\fileserver\\media", &f.uploaded),
            PathMapping::new("D:\\media", &f.uploaded),
        ];
        let policy = PathPolicy::new(std::slice::from_ref(&f.uploaded), &mappings).expect("policy");
        for unc in [
            "\\\\FileServer\\Media\\clip.mp4",
            "//fileserver/media/clip.mp4",
        ] {
            assert!(policy.resolve_file(unc).is_ok(), "{unc}");
        }
        assert!(policy.resolve_file("d:/MEDIA/clip.mp4").is_ok());
        // The same names as a POSIX path, or on another drive, are not mapped.
        assert!(policy.resolve_file("/fileserver/media/clip.mp4").is_err());
        assert!(matches!(
            policy.resolve_file("E:\\media\\clip.mp4"),
            Err(PathError::Unmapped(_))
        ));
        assert!(matches!(
            policy.resolve_file("\\\\media\\clip.mp4"),
            Err(PathError::Unmapped(_))
        ));
    }

    #[test]
    fn accepts_local_absolute_paths_inside_the_roots() {
        let f = fixture();
        let local = f.uploaded.join("clip.mp4");
        assert!(f.policy.resolve_file(&local.to_string_lossy()).is_ok());
    }

    #[test]
    fn refuses_escapes_with_the_rule_named() {
        let f = fixture();
        let outside = f.outside.join("secret.mp4").to_string_lossy().into_owned();
        let traversal = format!("{}/../outside/secret.mp4", f.uploaded.display());
        let cases = [
            ("", PathError::Empty),
            (
                "c:\\videoshare\\uploaded\\..\\..\\etc\\passwd",
                PathError::ParentDir("c:\\videoshare\\uploaded\\..\\..\\etc\\passwd".into()),
            ),
            (traversal.as_str(), PathError::ParentDir(traversal.clone())),
            (
                "d:\\elsewhere\\clip.mp4",
                PathError::Unmapped("d:\\elsewhere\\clip.mp4".into()),
            ),
            (
                "\\\\server\\share\\clip.mp4",
                PathError::Unmapped("\\\\server\\share\\clip.mp4".into()),
            ),
            ("clip.mp4", PathError::Relative("clip.mp4".into())),
            (outside.as_str(), PathError::OutsideRoots(outside.clone())),
            ("/etc/passwd", PathError::OutsideRoots("/etc/passwd".into())),
            ("a\0b", PathError::Nul),
        ];
        for (input, expected) in cases {
            assert_eq!(f.policy.resolve_file(input), Err(expected), "{input:?}");
        }
    }

    #[test]
    fn refuses_symlinks_that_escape() {
        let f = fixture();
        let link = f.uploaded.join("link.mp4");
        std::os::unix::fs::symlink(f.outside.join("secret.mp4"), &link).expect("symlink");
        let err = f
            .policy
            .resolve_file(&link.to_string_lossy())
            .expect_err("escapes");
        assert!(matches!(err, PathError::OutsideRoots(_)), "{err:?}");
    }

    #[test]
    fn files_and_folders_are_not_interchangeable() {
        let f = fixture();
        let dir = f.streams.to_string_lossy().into_owned();
        assert_eq!(
            f.policy.resolve_file(&dir),
            Err(PathError::NotAFile(dir.clone()))
        );
        let file = f.uploaded.join("clip.mp4").to_string_lossy().into_owned();
        assert_eq!(
            f.policy.resolve_dir(&file),
            Err(PathError::NotADirectory(file.clone()))
        );
        let missing = f.uploaded.join("nope.mp4").to_string_lossy().into_owned();
        assert_eq!(
            f.policy.resolve_file(&missing),
            Err(PathError::NotFound(missing.clone()))
        );
    }
}
