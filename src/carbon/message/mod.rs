//! Typed Carbon requests and replies, and their XML form (quick-xml + serde).
//!
//! Owns the document shapes of §2 of `docs/carbon-protocol.md`: which element
//! holds what, attribute names and order, the reply size budget. It knows no
//! sockets (see `frame`) and no job logic (see `encoder`).
//!
//! One Rust type per request ([`request`]) and per reply ([`reply`]); the
//! XML wire structs stay private to those files.
//!
//! Carbon numbers sibling elements (`Module_0`, `Module_1`, `Criteria_0`,
//! `Job_0`…); [`Indexed`] maps such a family to a `Vec` in both directions.

mod reply;
mod request;
#[cfg(test)]
mod tests;

pub use reply::*;
pub use request::*;

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use quick_xml::events::Event;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What is wrong with a request document.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MessageError {
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("DTDs and entity declarations are not accepted")]
    Dtd,
    #[error("the root element must be <cnpsXML>, found <{0}>")]
    WrongRoot(String),
    #[error("the document has no root element")]
    Empty,
    #[error("the request has no TaskType attribute")]
    MissingTaskType,
    #[error("{0}")]
    UnknownTaskType(String),
    #[error("invalid {task} request: {reason}")]
    Invalid { task: &'static str, reason: String },
}

// ---------------------------------------------------------------------------
// Numbered element families
// ---------------------------------------------------------------------------

/// The name stem of a numbered element family, and how many members a
/// document may hold (a bound on the work one request can cause).
pub trait Family {
    const STEM: &'static str;
    const MAX: usize;
}

macro_rules! family {
    ($name:ident, $stem:literal, $max:expr) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;
        impl Family for $name {
            const STEM: &'static str = $stem;
            const MAX: usize = $max;
        }
    };
}
family!(ModuleN, "Module_", 64);
family!(CriteriaN, "Criteria_", 64);
// Replies list every job, preset or node a server has.
family!(JobN, "Job_", usize::MAX);
family!(ProfileN, "Profile_", usize::MAX);
family!(NodeN, "Node_", usize::MAX);

/// `<Stem_0 .../><Stem_1 .../>…` as an ordered list. Children with other
/// names are ignored; a repeated index is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Indexed<T, F>(pub Vec<T>, PhantomData<F>);

impl<T, F> Indexed<T, F> {
    pub fn new(items: Vec<T>) -> Self {
        Indexed(items, PhantomData)
    }
}

impl<T, F> Default for Indexed<T, F> {
    fn default() -> Self {
        Indexed::new(Vec::new())
    }
}

impl<T: Serialize, F: Family> Serialize for Indexed<T, F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (i, item) in self.0.iter().enumerate() {
            map.serialize_entry(&format!("{}{i}", F::STEM), item)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>, F: Family> Deserialize<'de> for Indexed<T, F> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, F>(PhantomData<(T, F)>);
        impl<'de, T: Deserialize<'de>, F: Family> Visitor<'de> for V<T, F> {
            type Value = Indexed<T, F>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "elements named {}0, {}1, …", F::STEM, F::STEM)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut items: BTreeMap<u32, T> = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let index = key
                        .strip_prefix(F::STEM)
                        .and_then(|n| n.parse::<u32>().ok());
                    let Some(index) = index else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    if items.len() == F::MAX {
                        return Err(serde::de::Error::custom(format!(
                            "more than {} {}N elements",
                            F::MAX,
                            F::STEM
                        )));
                    }
                    if items.insert(index, map.next_value()?).is_some() {
                        return Err(serde::de::Error::custom(format!("{key} appears twice")));
                    }
                }
                Ok(Indexed::new(items.into_values().collect()))
            }
            // `<Sources/>` or `<Sources></Sources>` with nothing inside.
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Indexed::default())
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Indexed::default())
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// `#[serde(with = "...")]` helpers: a `Vec<T>` field written as a numbered
/// family, so public types hold plain `Vec`s.
macro_rules! indexed_with {
    ($module:ident, $family:ty) => {
        pub(crate) mod $module {
            use super::*;

            pub fn serialize<T: Serialize, S: Serializer>(
                items: &[T],
                s: S,
            ) -> Result<S::Ok, S::Error> {
                Indexed::<&T, $family>::new(items.iter().collect()).serialize(s)
            }

            pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
                d: D,
            ) -> Result<Vec<T>, D::Error> {
                Ok(Indexed::<T, $family>::deserialize(d)?.0)
            }
        }
    };
}
indexed_with!(modules, ModuleN);
indexed_with!(criteria, CriteriaN);
indexed_with!(jobs, JobN);
indexed_with!(profiles, ProfileN);
indexed_with!(nodes, NodeN);

/// Checks the document is well-formed, has no DTD and that its root is `cnpsXML`.
fn check_document(text: &str) -> Result<(), MessageError> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut root: Option<String> = None;
    loop {
        match reader.read_event() {
            Err(e) => {
                return Err(MessageError::Malformed(format!(
                    "{e} (at byte {})",
                    reader.error_position()
                )));
            }
            Ok(Event::DocType(_)) => return Err(MessageError::Dtd),
            Ok(Event::Start(e) | Event::Empty(e)) if root.is_none() => {
                root = Some(e.name().0.to_owned());
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
        }
    }
    match root {
        None => Err(MessageError::Empty),
        Some(name) if name == "cnpsXML" => Ok(()),
        Some(name) => Err(MessageError::WrongRoot(name)),
    }
}
