//! The one builder of ffmpeg command lines: encodes (`encoder::ffmpeg`),
//! thumbnails ([`super::thumbnail`]) and test clips ([`super::synthetic`])
//! all start from [`FfmpegArgs::new`], so every run has the same quiet
//! head, and every input is opened through the lists of [`super::inputs`].
//!
//! It also remembers each file it was handed, so what ffmpeg says about a
//! failure can name those files without the server's folders
//! ([`FfmpegArgs::name_files_only`]). It runs nothing itself: that is
//! [`super::process`] (short runs) or the encoder's runner.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::inputs::{media_input_args, pieces_input_args, synthetic_input_args};
use super::process::ProcessError;

/// An ffmpeg argument list under construction.
#[derive(Debug, Clone)]
pub struct FfmpegArgs {
    args: Vec<OsString>,
    /// Every input and output file named in `args`.
    files: Vec<PathBuf>,
}

impl Default for FfmpegArgs {
    fn default() -> Self {
        Self::new()
    }
}

impl FfmpegArgs {
    /// The head every run starts with: no banner, no stdin, errors only.
    pub fn new() -> Self {
        FfmpegArgs {
            args: Vec::new(),
            files: Vec::new(),
        }
        .with(["-hide_banner", "-nostdin", "-loglevel", "error"])
    }

    /// Appends plain options (not files).
    pub fn with<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// One media file input: `options` (such as a seek) first, then what it
    /// may be read as (local media only), then `-i file`.
    pub fn media_input<I, S>(self, options: I, file: &Path) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.with(options)
            .with(media_input_args())
            .with(["-i"])
            .file(file)
    }

    /// A chunked encode's picture pieces as one input: `list` names their
    /// files, one `file:` URL a line, in playing order (read through
    /// ffmpeg's `concatf` protocol, MPEG-TS only).
    pub fn pieces_input(self, list: &Path) -> Self {
        let mut url = OsString::from("concatf:");
        url.push(list.as_os_str());
        let mut args = self.with(pieces_input_args()).with(["-i"]).with([url]);
        args.files.push(list.to_owned());
        args
    }

    /// One generated input: a `lavfi` filter graph such as
    /// `sine=frequency=440:duration=2`.
    pub fn synthetic_input(self, graph: &str) -> Self {
        self.with(synthetic_input_args())
            .with(["-f", "lavfi", "-i", graph])
    }

    /// An output file (its options go before, with [`FfmpegArgs::with`]).
    pub fn output(self, file: &Path) -> Self {
        self.file(file)
    }

    /// Notes a file or folder named inside an option's value (such as an
    /// HLS segment pattern), so errors name it without its folders too.
    pub fn mention(mut self, file: &Path) -> Self {
        self.files.push(file.to_owned());
        self
    }

    fn file(mut self, file: &Path) -> Self {
        self.args.push(file.as_os_str().to_owned());
        self.files.push(file.to_owned());
        self
    }

    pub fn as_slice(&self) -> &[OsString] {
        &self.args
    }

    /// `text` (ffmpeg's words) with each file this run was handed named
    /// by its file name alone.
    pub fn name_files_only(&self, text: &str) -> String {
        let mut text = text.to_owned();
        // Longest first, so a path is never cut by a shorter one it starts with.
        let mut files: Vec<&PathBuf> = self.files.iter().collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.as_os_str().len()));
        for file in files {
            let (Some(full), Some(name)) = (file.to_str(), file.file_name()) else {
                continue;
            };
            text = text.replace(full, &name.to_string_lossy());
        }
        text
    }

    /// A run's error with ffmpeg's words naming files without folders.
    pub fn name_files_only_in(&self, error: ProcessError) -> ProcessError {
        error.with_words(|words| self.name_files_only(words))
    }
}

/// The arguments, for `Command::args`.
impl IntoIterator for FfmpegArgs {
    type Item = OsString;
    type IntoIter = std::vec::IntoIter<OsString>;

    fn into_iter(self) -> Self::IntoIter {
        self.args.into_iter()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The arguments as one line, for tests to read.
    pub(crate) fn joined(args: &FfmpegArgs) -> String {
        args.as_slice()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn inputs_are_whitelisted_and_files_lose_their_folders() {
        let args = FfmpegArgs::new()
            .media_input(["-ss", "1.5"], Path::new("/srv/in/a b.mov"))
            .synthetic_input("sine=duration=1")
            .with(["-y"])
            .output(Path::new("/srv/tmp/out.mp4"));
        let text = joined(&args);
        assert!(
            text.starts_with("-hide_banner -nostdin -loglevel error -ss 1.5"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{} -i /srv/in/a b.mov",
                media_input_args().join(" ")
            )),
            "{text}"
        );
        assert!(
            text.contains("-format_whitelist lavfi -f lavfi -i sine=duration=1"),
            "{text}"
        );
        assert_eq!(
            args.name_files_only("/srv/in/a b.mov: bad; cannot write /srv/tmp/out.mp4"),
            "a b.mov: bad; cannot write out.mp4"
        );
    }
}
