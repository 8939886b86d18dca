//! Payload text encoding.
//!
//! Requests: the manual's clients send UTF-8 and count its bytes; the seed's
//! Flash page sends ISO-8859-1 (one byte, one character). A request is read
//! in the encoding its XML declaration names; without one, as UTF-8 when the
//! bytes are valid UTF-8 (Latin-1 text with accents almost never is), else
//! as Latin-1.
//!
//! Replies are plain ASCII with every other character as an XML character
//! reference: that reads the same as UTF-8 and as Latin-1, and the seed's
//! Flex client decodes replies as UTF-8 (`readUTFBytes`) although it sends
//! Latin-1.

/// Decodes a request (or reply) payload to text.
pub fn decode(payload: &[u8]) -> String {
    match declared_encoding(payload) {
        Declared::Latin1 => latin1(payload),
        Declared::Utf8 | Declared::None => match std::str::from_utf8(payload) {
            Ok(text) => text.to_owned(),
            Err(_) => latin1(payload),
        },
    }
}

fn latin1(payload: &[u8]) -> String {
    payload.iter().map(|&b| char::from(b)).collect()
}

/// Encodes document text as ASCII, writing other characters as `&#N;`.
///
/// Only valid for text where a character reference is legal wherever a
/// non-ASCII character can occur, which holds for documents whose element
/// and attribute *names* are ASCII (every Carbon document).
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c as u8);
        } else {
            out.extend_from_slice(format!("&#{};", u32::from(c)).as_bytes());
        }
    }
    out
}

/// The byte length `text` will have once encoded, without building it.
pub fn encoded_len(text: &str) -> usize {
    text.chars().map(char_len).sum()
}

/// The bytes one character takes once encoded.
pub fn char_len(c: char) -> usize {
    if c.is_ascii() {
        1
    } else {
        // "&#" + decimal digits + ";"
        3 + u32::from(c).to_string().len()
    }
}

enum Declared {
    Utf8,
    Latin1,
    None,
}

/// The `encoding="…"` of an XML declaration at the start of `payload`.
fn declared_encoding(payload: &[u8]) -> Declared {
    let start = payload
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(payload.len());
    let Some(rest) = payload[start..].strip_prefix(b"<?xml") else {
        return Declared::None;
    };
    let end = rest.iter().position(|&b| b == b'>').unwrap_or(rest.len());
    let decl: String = String::from_utf8_lossy(&rest[..end])
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let Some(after) = decl.split("encoding=").nth(1) else {
        return Declared::None;
    };
    let name = after.trim_start_matches(['"', '\'']);
    let name = &name[..name.find(['"', '\'']).unwrap_or(name.len())];
    match name {
        "utf-8" | "utf8" => Declared::Utf8,
        "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "l1" | "iso_8859-1"
        | "windows-1252" | "cp1252" | "us-ascii" | "ascii" => Declared::Latin1,
        _ => Declared::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_latin1_and_writes_ascii() {
        let bytes = [b'<', 0xE9, b'>']; // <é> in Latin-1
        assert_eq!(decode(&bytes), "<é>");
        assert_eq!(encode("<é>"), b"<&#233;>".to_vec());
        assert!(
            std::str::from_utf8(&encode("é€")).is_ok(),
            "valid UTF-8 too"
        );
    }

    #[test]
    fn non_ascii_becomes_character_reference() {
        assert_eq!(encode("a€b"), b"a&#8364;b".to_vec());
        assert_eq!(encoded_len("a€b"), encode("a€b").len());
        assert_eq!(encoded_len("日本"), encode("日本").len());
    }

    #[test]
    fn follows_the_declaration_else_guesses_utf8() {
        let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a b=\"é\"/>";
        assert_eq!(decode(doc.as_bytes()), doc);
        // Undeclared UTF-8 is read as UTF-8 (the manual's encoding)…
        assert_eq!(decode("<a b=\"é\"/>".as_bytes()), "<a b=\"é\"/>");
        // …and undeclared Latin-1 as Latin-1 (the seed's).
        assert_eq!(
            decode(&[b'<', b'a', b' ', b'b', b'=', b'"', 0xE9, b'"', b'/', b'>']),
            "<a b=\"é\"/>"
        );
        // Declared Latin-1 wins even where the bytes happen to be valid UTF-8.
        let declared = "<?xml version='1.0' encoding='ISO-8859-1'?><a b='é'/>";
        assert_eq!(
            decode(declared.as_bytes()),
            "<?xml version='1.0' encoding='ISO-8859-1'?><a b='Ã©'/>"
        );
    }
}
