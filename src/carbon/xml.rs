//! A small element tree for Carbon documents: parsed with quick-xml, written
//! by hand, nothing else.
//!
//! Carbon documents are attributes on elements, never text, with names such
//! as `Priority.DWD` and numbered siblings (`Module_0`, `Module_1`, …). The
//! clients in the wild vary the case of names (`GUID`/`Guid`), quote with `'`
//! or `"`, indent or not; a tree read once and looked up by name takes all of
//! that in one place. It knows no task types: see [`super::message`].

use std::fmt::Write as _;

use quick_xml::events::Event;

/// Deepest nesting a document may have (Carbon's deepest is about 7).
const MAX_DEPTH: usize = 32;

/// Most elements one document may hold (a bound on the work of one request).
const MAX_ELEMENTS: usize = 100_000;

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum XmlError {
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("DTDs and entity declarations are not accepted")]
    Dtd,
    #[error("the document has no root element")]
    Empty,
    #[error("the document nests deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("the document has more than {MAX_ELEMENTS} elements")]
    TooLarge,
    #[error("{0} appears twice")]
    Repeated(String),
}

/// One element: its name, its attributes in document order, its child
/// elements. Text content is not kept (Carbon uses none).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
}

impl Element {
    pub fn new(name: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            ..Element::default()
        }
    }

    /// Adds an attribute (builder style).
    pub fn attr(mut self, name: impl Into<String>, value: impl std::fmt::Display) -> Self {
        self.attrs.push((name.into(), value.to_string()));
        self
    }

    /// Adds an attribute when there is a value.
    pub fn opt_attr<V: std::fmt::Display>(self, name: &str, value: Option<V>) -> Self {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    /// Adds a child element (builder style).
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(child);
        self
    }

    /// Adds children named `Stem_0`, `Stem_1`, … in order.
    pub fn numbered_children(
        mut self,
        stem: &str,
        items: impl IntoIterator<Item = Element>,
    ) -> Self {
        for (i, mut item) in items.into_iter().enumerate() {
            item.name = format!("{stem}_{i}");
            self.children.push(item);
        }
        self
    }

    /// An attribute's value, its name matched without regard to case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// An attribute's value unless it is blank (`AssignedTags=""` asks for
    /// nothing): how Carbon treats an empty attribute.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// The first of `names` that is present.
    pub fn get_any(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.get(n))
    }

    /// The first child called `name` (any case).
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The first child with one of `names`.
    pub fn find_any(&self, names: &[&str]) -> Option<&Element> {
        names.iter().find_map(|n| self.find(n))
    }

    /// Children called `Stem_N`, ordered by N. A repeated N is an error;
    /// gaps are tolerated (the order is what matters).
    pub fn numbered(&self, stem: &str) -> Result<Vec<&Element>, XmlError> {
        let mut found: Vec<(u32, &Element)> = self
            .children
            .iter()
            .filter_map(|child| Some((numbered_index(&child.name, stem)?, child)))
            .collect();
        found.sort_by_key(|(i, _)| *i);
        if let Some(pair) = found.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(XmlError::Repeated(pair[1].1.name.clone()));
        }
        Ok(found.into_iter().map(|(_, e)| e).collect())
    }

    /// Attributes called `Stem_N` + `suffix` (e.g. `Node_0`, `Inpoint_1.QWD`),
    /// as `(N, value)` ordered by N.
    pub fn numbered_attrs(&self, stem: &str, suffix: &str) -> Vec<(u32, &str)> {
        let mut found: Vec<(u32, &str)> = self
            .attrs
            .iter()
            .filter_map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let bare = lower.strip_suffix(&suffix.to_ascii_lowercase())?;
                Some((numbered_index(bare, stem)?, v.as_str()))
            })
            .collect();
        found.sort_by_key(|(i, _)| *i);
        found
    }

    /// The values of attributes `Stem_0`, `Stem_1`, … in order (`Node_0`,
    /// `File_0`): a list written as attributes.
    pub fn attr_series(&self, stem: &str) -> Vec<String> {
        self.numbered_attrs(stem, "")
            .into_iter()
            .map(|(_, v)| v.to_owned())
            .collect()
    }

    /// Adds `items` as attributes `Stem_0`, `Stem_1`, … (builder style).
    pub fn with_attr_series<V: std::fmt::Display>(
        self,
        stem: &str,
        items: impl IntoIterator<Item = V>,
    ) -> Self {
        items
            .into_iter()
            .enumerate()
            .fold(self, |e, (i, v)| e.attr(format!("{stem}_{i}"), v))
    }

    /// Whether the element carries nothing: no attributes with a value and
    /// no children (`<PostconversionTasks/>`, `<Filter_0/>`, `AssignedTags=""`).
    pub fn is_blank(&self) -> bool {
        self.attrs.iter().all(|(_, v)| v.trim().is_empty())
            && self.children.iter().all(Element::is_blank)
    }

    /// Reads a document: well-formed, no DTD, within the size limits.
    pub fn parse(text: &str) -> Result<Element, XmlError> {
        let mut reader = quick_xml::Reader::from_str(text);
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        let mut count = 0usize;
        loop {
            let event = reader.read_event().map_err(|e| {
                XmlError::Malformed(format!("{e} (at byte {})", reader.error_position()))
            })?;
            match event {
                Event::DocType(_) => return Err(XmlError::Dtd),
                Event::Start(start) | Event::Empty(start) if root.is_some() => {
                    let _ = start;
                    return Err(XmlError::Malformed("more than one root element".to_owned()));
                }
                Event::Start(start) => {
                    count += 1;
                    if count > MAX_ELEMENTS {
                        return Err(XmlError::TooLarge);
                    }
                    if stack.len() == MAX_DEPTH {
                        return Err(XmlError::TooDeep);
                    }
                    stack.push(element_of(&start)?);
                }
                Event::Empty(start) => {
                    count += 1;
                    if count > MAX_ELEMENTS {
                        return Err(XmlError::TooLarge);
                    }
                    let element = element_of(&start)?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => root = Some(element),
                    }
                }
                Event::End(_) => {
                    let Some(done) = stack.pop() else {
                        return Err(XmlError::Malformed("unbalanced end tag".to_owned()));
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => root = Some(done),
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        if !stack.is_empty() {
            return Err(XmlError::Malformed(
                "the document ends inside an element".to_owned(),
            ));
        }
        root.ok_or(XmlError::Empty)
    }

    /// The element as XML text (no declaration). Attribute values are
    /// escaped; the caller encodes non-ASCII (see [`super::text::encode`]).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}=\"");
            escape_into(v, out);
            out.push('"');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for child in &self.children {
            child.write(out);
        }
        let _ = write!(out, "</{}>", self.name);
    }
}

/// N of `Stem_N` (any case of the stem).
fn numbered_index(name: &str, stem: &str) -> Option<u32> {
    let prefix = name.get(..stem.len())?;
    if !prefix.eq_ignore_ascii_case(stem) {
        return None;
    }
    let digits = name[stem.len()..].strip_prefix('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn element_of(start: &quick_xml::events::BytesStart<'_>) -> Result<Element, XmlError> {
    let name = start.name().0.to_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError::Malformed(e.to_string()))?;
        let key = attr.key.0.to_owned();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| XmlError::Malformed(format!("attribute {key}: {e}")))?
            .into_owned();
        // quick-xml has already refused a repeated attribute name.
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
    })
}

/// Escapes an attribute value written between double quotes. Line breaks
/// and tabs become character references so they survive normalisation.
fn escape_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            other => out.push(other),
        }
    }
}

/// Bytes `value` takes as an escaped attribute value once encoded for the wire.
pub fn attr_cost(value: &str) -> usize {
    value
        .chars()
        .map(|c| match c {
            '&' => 5,
            '<' | '>' => 4,
            '"' => 6,
            '\n' | '\r' => 5,
            '\t' => 4,
            other => super::text::char_len(other),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_clients_send() {
        let doc = "<?xml version='1.0' encoding='UTF-8'?>\n<cnpsXML TaskType = 'JobCommand'>\n  \
                   <JobCommand Command=\"Pause\" guid='{A}'/>\n</cnpsXML>\n";
        let root = Element::parse(doc).expect("parses");
        assert_eq!(root.name, "cnpsXML");
        assert_eq!(root.get("tasktype"), Some("JobCommand"));
        let command = root.find("jobcommand").expect("child");
        assert_eq!(command.get("GUID"), Some("{A}"));
    }

    #[test]
    fn numbered_siblings_in_order_and_no_repeats() {
        let root = Element::parse("<a><M_1 x='1'/><Other/><M_0 x='0'/><M_x/></a>").expect("ok");
        let found: Vec<_> = root
            .numbered("M")
            .expect("ok")
            .iter()
            .map(|e| e.get("x"))
            .collect();
        assert_eq!(found, vec![Some("0"), Some("1")]);
        let twice = Element::parse("<a><M_0/><M_1/><M_0/></a>").expect("ok");
        assert!(matches!(twice.numbered("M"), Err(XmlError::Repeated(_))));
        assert!(
            Element::parse("<a x='1' x='2'/>").is_err(),
            "a repeated attribute"
        );
        let attrs =
            Element::parse("<a Inpoint_1.QWD='5' Inpoint_0.QWD='3' Inpoint.QWD='9'/>").expect("ok");
        assert_eq!(
            attrs.numbered_attrs("Inpoint", ".QWD"),
            vec![(0, "3"), (1, "5")]
        );
    }

    #[test]
    fn refuses_dtds_and_depth() {
        assert_eq!(
            Element::parse("<!DOCTYPE a [<!ENTITY x 'y'>]><a/>"),
            Err(XmlError::Dtd)
        );
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert_eq!(Element::parse(&deep), Err(XmlError::TooDeep));
        assert!(matches!(
            Element::parse("<a><b></a>"),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(Element::parse("  "), Err(XmlError::Empty));
    }

    #[test]
    fn writes_and_reads_back() {
        let e = Element::new("Reply")
            .attr("Success", "TRUE")
            .attr("Error", "a \"b\" <c> & d\ne")
            .child(Element::new("X"));
        let text = e.to_xml();
        assert_eq!(Element::parse(&text).expect("round trip"), e);
        assert_eq!(attr_cost("a \"b\" <c> & d\ne"), {
            let mut s = String::new();
            escape_into("a \"b\" <c> & d\ne", &mut s);
            s.len()
        });
    }
}
