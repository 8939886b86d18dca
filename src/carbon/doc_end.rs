//! Where an XML document ends, found by scanning its markup once.
//!
//! Used by the frame codec for clients that announce a frame's length in
//! characters rather than bytes (see `frame`): it must tell, in any text
//! encoding and over bytes that arrive in pieces, whether the root element
//! has closed. The scan is lexical (tags, quoted attribute values,
//! comments, processing instructions, CDATA, declarations) and resumable:
//! each byte is looked at once however the bytes arrive, so a peer cannot
//! make it quadratic.

/// What the scanner is inside of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Between tags.
    Text,
    /// Inside `<…>` that started at `start`, within quotes `quote` if any.
    Tag { start: usize, quote: Option<u8> },
    /// Inside `<?…?>`, `<!--…-->`, `<![CDATA[…]]>` or `<!…>`: until `end`,
    /// looked for from `floor` (the construct's content) on.
    Until { end: &'static [u8], floor: usize },
}

/// A resumable scan of one document from its first byte.
#[derive(Debug, Clone)]
pub struct DocScan {
    pos: usize,
    depth: usize,
    mode: Mode,
    /// Where the root element closed (the byte after its `>`).
    end: Option<usize>,
}

impl Default for DocScan {
    fn default() -> Self {
        DocScan {
            pos: 0,
            depth: 0,
            mode: Mode::Text,
            end: None,
        }
    }
}

impl DocScan {
    /// Scans `bytes` (the document so far; each call may pass more of it)
    /// and returns where the root element ends, once it has.
    pub fn advance(&mut self, bytes: &[u8]) -> Option<usize> {
        while self.end.is_none() && self.pos < bytes.len() {
            match self.mode {
                Mode::Text => {
                    let Some(at) = bytes[self.pos..].iter().position(|&b| b == b'<') else {
                        self.pos = bytes.len();
                        break;
                    };
                    let start = self.pos + at;
                    let rest = &bytes[start..];
                    // Which construct needs up to 9 bytes to tell.
                    let opening: &[(&[u8], &'static [u8])] =
                        &[(b"<?", b"?>"), (b"<!--", b"-->"), (b"<![CDATA[", b"]]>")];
                    let mut decided = false;
                    for (open, close) in opening {
                        if rest.len() < open.len() && open.starts_with(rest) {
                            self.pos = start;
                            return None;
                        }
                        if rest.starts_with(open) {
                            self.pos = start + open.len();
                            self.mode = Mode::Until {
                                end: close,
                                floor: self.pos,
                            };
                            decided = true;
                            break;
                        }
                    }
                    if !decided {
                        if rest.starts_with(b"<!") {
                            self.pos = start + 2;
                            self.mode = Mode::Until {
                                end: b">",
                                floor: self.pos,
                            };
                        } else {
                            self.mode = Mode::Tag { start, quote: None };
                            self.pos = start + 1;
                        }
                    }
                }
                Mode::Until { end, floor } => {
                    // Resume a little before, in case the terminator was split.
                    let from = self.pos.saturating_sub(end.len() - 1).max(floor);
                    match bytes[from..].windows(end.len()).position(|w| w == end) {
                        Some(at) => {
                            self.pos = from + at + end.len();
                            self.mode = Mode::Text;
                        }
                        None => {
                            self.pos = bytes.len();
                            break;
                        }
                    }
                }
                Mode::Tag { start, mut quote } => {
                    let mut closed_at = None;
                    for (i, &b) in bytes.iter().enumerate().skip(self.pos) {
                        match quote {
                            Some(q) if b == q => quote = None,
                            Some(_) => {}
                            None if b == b'"' || b == b'\'' => quote = Some(b),
                            None if b == b'>' => {
                                closed_at = Some(i);
                                break;
                            }
                            None => {}
                        }
                    }
                    let Some(gt) = closed_at else {
                        self.mode = Mode::Tag { start, quote };
                        self.pos = bytes.len();
                        break;
                    };
                    self.pos = gt + 1;
                    self.mode = Mode::Text;
                    let closes = if bytes.get(start + 1) == Some(&b'/') {
                        self.depth = self.depth.saturating_sub(1);
                        true
                    } else if bytes[gt - 1] == b'/' {
                        true
                    } else {
                        self.depth += 1;
                        false
                    };
                    if closes && self.depth == 0 {
                        self.end = Some(self.pos);
                    }
                }
            }
        }
        self.end
    }
}

/// Whether `bytes` hold a whole document (its root element closed).
#[cfg(test)]
fn is_whole(bytes: &[u8]) -> bool {
    DocScan::default().advance(bytes).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_documents_are_told_from_cut_ones() {
        for whole in [
            &b"<a/>"[..],
            b"<?xml version='1.0'?>\n<a x='>'><!-- > --><b/></a>\r\n",
            b"<a b=\"\xE9\"></a>",
            b"<a><![CDATA[</a>]]></a>",
        ] {
            assert!(is_whole(whole), "{:?}", String::from_utf8_lossy(whole));
        }
        for cut in [
            &b"<a><b/>"[..],
            b"<a x='>",
            b"<a></a",
            b"<?xml ",
            b"",
            b"<a><![CDA",
        ] {
            assert!(!is_whole(cut), "{:?}", String::from_utf8_lossy(cut));
        }
    }

    #[test]
    fn bytes_arriving_one_at_a_time_give_the_same_end() {
        let doc = b"<?xml version='1.0'?><!--c--><a q='>'><![CDATA[<x>]]><b/></a>tail";
        let whole = DocScan::default().advance(doc);
        assert_eq!(whole, Some(doc.len() - 4));
        let mut scan = DocScan::default();
        let mut found = None;
        for n in 1..=doc.len() {
            found = scan.advance(&doc[..n]);
            if found.is_some() {
                break;
            }
        }
        assert_eq!(found, whole);
    }
}
