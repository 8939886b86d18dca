//! Whose uploads, jobs and videos these are: the [`Owner`] identity, shared
//! by the portal (which learns it from a session cookie) and the store
//! (which reads it back from the rows that carry it), and the one check of
//! the random ids the portal hands out ([`is_random_id`]).
//!
//! An identity is `anon:<random id>` for a browser, or `user:<name>` for an
//! account. Knows nothing of cookies, HTTP or SQL.

/// Longest account name, in characters.
pub const MAX_NAME: usize = 32;

/// Whether `text` has the shape of a random id the portal hands out: 32 hex
/// digits (a v4 UUID without dashes), as in an anonymous owner, a signed-in
/// session's id and a resumable upload's id.
pub fn is_random_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A new random id of the shape [`is_random_id`] accepts.
pub fn new_random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whose jobs these are: a browser session or an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    /// A new browser identity nobody else can guess.
    pub fn anonymous() -> Owner {
        Owner(format!("anon:{}", new_random_id()))
    }

    /// The identity of an account (`name` already checked).
    pub fn account(name: &str) -> Owner {
        Owner(format!("user:{name}"))
    }

    /// Reads an identity as stored in a cookie or a record.
    pub fn parse(text: &str) -> Option<Owner> {
        let valid = match text.split_once(':') {
            Some(("anon", id)) => is_random_id(id),
            Some(("user", name)) => check_account_name(name).is_ok(),
            _ => false,
        };
        valid.then(|| Owner(text.to_owned()))
    }

    /// The account's name, if this identity is an account.
    pub fn account_name(&self) -> Option<&str> {
        self.0.strip_prefix("user:")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored identity that is none of the shapes [`Owner::parse`] reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an owner identity")]
pub struct InvalidOwner(pub String);

impl TryFrom<String> for Owner {
    type Error = InvalidOwner;

    fn try_from(text: String) -> Result<Owner, InvalidOwner> {
        Owner::parse(&text).ok_or(InvalidOwner(text))
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a name cannot be an account's name; the message is for the person
/// who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAccountName {
    #[error("A user name has 1 to {MAX_NAME} characters.")]
    Length,
    #[error("A user name may use only letters, digits, '-', '_' and '.'.")]
    Characters,
}

/// An account name: 1–32 letters, digits, `-`, `_` or `.`, so it is safe in
/// a cookie, a URL, a log line and a Carbon attribute.
pub fn check_account_name(name: &str) -> Result<(), BadAccountName> {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(BadAccountName::Length);
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(BadAccountName::Characters);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_only_when_well_formed() {
        let anon = Owner::anonymous();
        assert_eq!(Owner::parse(anon.as_str()), Some(anon.clone()));
        assert_eq!(anon.account_name(), None);
        let ann = Owner::account("ann");
        assert_eq!(Owner::parse("user:ann"), Some(ann.clone()));
        assert_eq!(ann.account_name(), Some("ann"));
        for bad in [
            "",
            "anon:",
            "anon:xyz",
            "user:",
            "user:a b",
            "user:<script>",
            "admin:x",
            "ann",
        ] {
            assert_eq!(Owner::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn account_names_are_checked() {
        assert!(check_account_name("ann.lee-2_x").is_ok());
        assert_eq!(check_account_name(""), Err(BadAccountName::Length));
        assert!(check_account_name(&"a".repeat(33)).is_err());
        assert!(check_account_name("Zoë").is_err());
        assert_eq!(check_account_name("a/b"), Err(BadAccountName::Characters));
    }

    #[test]
    fn random_ids_are_32_hex_digits() {
        assert!(is_random_id(&new_random_id()));
        assert!(is_random_id("0123456789abcdefABCDEF0123456789"));
        for bad in ["", "0123", "0123456789abcdef0123456789abcdeg", "../../etc"] {
            assert!(!is_random_id(bad), "{bad:?}");
        }
    }
}
