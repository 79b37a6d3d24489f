//! Entry keys on the command line and in output.
//!
//! Keys are arbitrary bytes, but a terminal deals in text. So every command that takes a key
//! accepts it either as text (its UTF-8 bytes) or as `--key-hex HEX` / `--prefix-hex HEX`,
//! and every command that prints keys does so without losing bytes:
//!
//! - JSON output carries `key_hex` always, and `key` only when the key is valid UTF-8, so a
//!   script never mistakes a lossy rendering for the key itself;
//! - text output [escapes](escape) the key so that different keys never print the same and
//!   a key never breaks the line or column layout of the output.
//!
//! Over the control channel a key travels as hex ([`Key`]), so a key with any bytes reaches
//! the serving node unchanged.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{CliError, Result};

/// How text output shows keys; part of the help of the commands that take or print keys.
pub const ESCAPING_HELP: &str = "\
Keys are bytes. Give a key as text (its UTF-8 bytes) or as hex with --key-hex / --prefix-hex \
(for example --key-hex 01ff00), not both.

Text output escapes keys so that every key prints differently and on one line: a backslash \
prints as \\\\, tab, newline, carriage return and NUL as \\t, \\n, \\r and \\0, other control \
and invisible characters as \\u{XXXX}, and bytes that are not valid UTF-8 as \\xNN. JSON \
output (--json) carries every key as key_hex, and also as key when it is valid UTF-8.";

/// A key (or key prefix) as raw bytes; serialized as a hex string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Key(pub Vec<u8>);

impl Key {
    /// The key from its text form or its hex form: exactly one must be given. `text_name`
    /// and `hex_name` name the two arguments in the error message.
    pub fn from_args(
        text: Option<String>,
        hex: Option<String>,
        text_name: &str,
        hex_name: &str,
    ) -> Result<Key> {
        match (text, hex) {
            (Some(_), Some(_)) => Err(CliError::Other(format!(
                "give either {text_name} or {hex_name} HEX, not both"
            ))),
            (None, None) => Err(CliError::Other(format!(
                "give {text_name} or {hex_name} HEX"
            ))),
            (Some(text), None) => Ok(Key(text.into_bytes())),
            (None, Some(hex)) => Key::from_hex(&hex, hex_name),
        }
    }

    /// Parses hex (upper or lower case, even length); `arg` names the argument in errors.
    pub fn from_hex(hex: &str, arg: &str) -> Result<Key> {
        hex::decode(hex.trim())
            .map(Key)
            .map_err(|e| CliError::Other(format!("invalid hex in {arg} {hex:?}: {e}")))
    }

    /// The key escaped for text output (see [`escape`]).
    pub fn display(&self) -> String {
        escape(&self.0)
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map(Key).map_err(serde::de::Error::custom)
    }
}

/// Whether `c` is shown as an escape rather than itself: anything that would be invisible,
/// move the cursor or reorder the text around it.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c,
            '\u{00ad}'                  // soft hyphen
            | '\u{200b}'..='\u{200f}'   // zero-width characters and direction marks
            | '\u{202a}'..='\u{202e}'   // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2064}'   // word joiner and invisible operators
            | '\u{2066}'..='\u{2069}'   // bidirectional isolates
            | '\u{feff}'                // zero-width no-break space
            | '\u{fff9}'..='\u{fffb}'   // interlinear annotations
        )
}

/// `bytes` as one line of text that no other byte string prints as: valid UTF-8 stays as it
/// is except that `\` becomes `\\`, tab, newline, carriage return and NUL become `\t`, `\n`,
/// `\r` and `\0`, other control and invisible characters become `\u{XXXX}` (Rust's escape
/// syntax), and each byte that is not part of valid UTF-8 becomes `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\0' => out.push_str("\\0"),
                c if needs_escape(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// [`escape`]d and in double quotes, with `"` escaped as `\"`: for keys inside a sentence.
pub fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", escape(bytes).replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_unambiguously() {
        assert_eq!(escape(b"photos/cat.jpg"), "photos/cat.jpg");
        assert_eq!(escape("grüße ✓".as_bytes()), "grüße ✓");
        assert_eq!(escape(&[0x01, 0xff, 0x00]), "\\u{1}\\xff\\0");
        assert_eq!(escape(b"a\tb\nc\rd"), "a\\tb\\nc\\rd");
        assert_eq!(escape(b"back\\slash"), "back\\\\slash");
        // The escape of a byte and the text of that escape differ.
        assert_ne!(escape(&[0xff]), escape(b"\\xff"));
        assert_eq!(escape(b"\\xff"), "\\\\xff");
        assert_eq!(escape("\u{202e}rtl".as_bytes()), "\\u{202e}rtl");
        assert_eq!(escape("a\u{a0}b".as_bytes()), "a\\u{a0}b");
        // A truncated multi-byte sequence is shown byte by byte.
        assert_eq!(escape(&[b'x', 0xe2, 0x9c]), "x\\xe2\\x9c");
        assert_eq!(quoted(b"say \"hi\""), "\"say \\\"hi\\\"\"");
    }

    #[test]
    fn distinct_keys_print_distinctly() {
        let keys: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            b"\\0".to_vec(),
            vec![0xff],
            b"\\xff".to_vec(),
            b"\\\\xff".to_vec(),
            b"\n".to_vec(),
            b"\\n".to_vec(),
            "\u{1}".as_bytes().to_vec(),
            b"\\u{1}".to_vec(),
        ];
        let shown: std::collections::BTreeSet<String> = keys.iter().map(|k| escape(k)).collect();
        assert_eq!(shown.len(), keys.len(), "{shown:?}");
        for s in &shown {
            assert!(!s.contains(['\n', '\t', '\r']), "{s:?}");
        }
    }

    #[test]
    fn key_arguments() {
        let k = |t: Option<&str>, h: Option<&str>| {
            Key::from_args(t.map(Into::into), h.map(Into::into), "KEY", "--key-hex")
        };
        assert_eq!(k(Some("a"), None).unwrap(), Key(b"a".to_vec()));
        assert_eq!(
            k(None, Some("01FF00")).unwrap(),
            Key(vec![0x01, 0xff, 0x00])
        );
        assert_eq!(k(None, Some("")).unwrap(), Key(vec![]));
        let both = k(Some("a"), Some("00")).unwrap_err().to_string();
        assert!(both.contains("not both"), "{both}");
        assert!(k(None, None).is_err());
        let bad = k(None, Some("0g")).unwrap_err().to_string();
        assert!(bad.contains("invalid hex in --key-hex"), "{bad}");
        assert!(k(None, Some("abc")).is_err());
    }

    #[test]
    fn serializes_as_hex() {
        let key = Key(vec![0, 1, 0xfe]);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, "\"0001fe\"");
        assert_eq!(serde_json::from_str::<Key>(&json).unwrap(), key);
        assert!(serde_json::from_str::<Key>("\"zz\"").is_err());
    }
}
