//! Payload text encoding. The Carbon wire is ISO-8859-1: one byte is one
//! character. Replies are written in plain ASCII, every other character as
//! an XML character reference: that reads the same as Latin-1 and as UTF-8,
//! and the seed's Flex client decodes replies as UTF-8 (`readUTFBytes`)
//! although it sends Latin-1.

/// Decodes a request payload to text.
///
/// Latin-1 unless the document declares `encoding="UTF-8"` and really is UTF-8
/// (some modern scripts send UTF-8; honouring their declaration keeps accented
/// file names intact).
pub fn decode(payload: &[u8]) -> String {
    if declares_utf8(payload)
        && let Ok(text) = std::str::from_utf8(payload)
    {
        return text.to_owned();
    }
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
    text.chars()
        .map(|c| {
            if c.is_ascii() {
                1
            } else {
                // "&#" + decimal digits + ";"
                3 + u32::from(c).to_string().len()
            }
        })
        .sum()
}

fn declares_utf8(payload: &[u8]) -> bool {
    let Some(rest) = payload.strip_prefix(b"<?xml") else {
        return false;
    };
    let decl_end = rest.iter().position(|&b| b == b'>').unwrap_or(rest.len());
    let decl = String::from_utf8_lossy(&rest[..decl_end]).to_ascii_lowercase();
    decl.contains("encoding=\"utf-8\"") || decl.contains("encoding='utf-8'")
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
    fn honours_a_utf8_declaration() {
        let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a b=\"é\"/>";
        assert_eq!(decode(doc.as_bytes()), doc);
        // Without the declaration the same bytes are Latin-1.
        assert_eq!(decode("é".as_bytes()), "Ã©");
    }
}
