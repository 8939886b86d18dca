//! How a path named in a Carbon message is rooted: a Windows drive
//! (`c:\…`), a UNC share (`\\server\share\…`) or anything else. The one
//! place that recognises Windows paths, for the encoder's path mapping and
//! the command-line client alike; what such a path means here is the
//! encoder's business (`encoder::paths`).

/// How a client path is rooted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// `c:\…` or `C:/…` (also a drive-relative `c:name`).
    Drive,
    /// `\\server\share\…` or `//server/share/…`
    Unc,
    /// Anything else (`/srv/…`, or relative).
    Posix,
}

impl PathKind {
    pub fn of(path: &str) -> PathKind {
        let bytes = path.as_bytes();
        if path.starts_with("\\\\") || path.starts_with("//") {
            PathKind::Unc
        } else if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
            PathKind::Drive
        } else {
            PathKind::Posix
        }
    }

    /// Windows paths match case-insensitively, as Windows does.
    pub fn ignores_case(self) -> bool {
        self != PathKind::Posix
    }
}

/// Whether `path` is an absolute Windows path: a drive with its root
/// (`c:\…`, `C:/…`) or a `\\server\share`.
pub fn is_absolute_windows(path: &str) -> bool {
    match PathKind::of(path) {
        PathKind::Drive => matches!(path.as_bytes().get(2), Some(b'\\' | b'/')),
        PathKind::Unc => true,
        PathKind::Posix => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drives_shares_and_the_rest() {
        assert_eq!(PathKind::of("c:\\videoshare\\a.flv"), PathKind::Drive);
        assert_eq!(PathKind::of("D:/x"), PathKind::Drive);
        assert_eq!(PathKind::of("\\\\server\\share"), PathKind::Unc);
        assert_eq!(PathKind::of("/srv/a"), PathKind::Posix);
        assert_eq!(PathKind::of("1:/x"), PathKind::Posix);
        assert!(is_absolute_windows("c:\\a") && is_absolute_windows("C:/a"));
        assert!(!is_absolute_windows("c:a") && !is_absolute_windows("a/b"));
        assert!(is_absolute_windows("\\\\server\\share"));
    }
}
