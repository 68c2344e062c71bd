//! What the control protocol (`spec/control.md`) asks of JSON beyond what
//! serde_json does by itself:
//!
//! - writing: [`to_string`] escapes every control character
//!   (U+0000..U+001F and U+007F..U+009F) as `\n`, `\r`, `\t` or `\u00XX`,
//!   so a reply is safe to print on a terminal; serde_json leaves
//!   U+007F..U+009F raw and writes `\b` and `\f`. Output is compact, so one
//!   value is always one line;
//! - reading: [`parse`] refuses duplicate keys (serde_json keeps the last
//!   one) and nesting deeper than [`MAX_JSON_DEPTH`]. The rest of RFC 8259
//!   (no comments, no trailing commas, no leading zeros, no lone
//!   surrogates, no raw control characters, nothing after the value) is
//!   serde_json's. Numbers are exact: a whole number is kept as a `u64` or
//!   `i64`, never as an `f64`.

use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};
use serde_json::{Map, Number, Value};
use std::fmt;
use std::io;

/// Deepest nesting of arrays and objects [`parse`] follows.
pub const MAX_JSON_DEPTH: usize = 32;

/// The compact JSON text of `value`, control characters escaped.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Escaping);
    // Writing to a Vec cannot fail, and every type written here has
    // string keys; a failure would be a bug, shown rather than hidden.
    if let Err(e) = value.serialize(&mut ser) {
        return format!("{{\"error\":{}}}", escape(&e.to_string()));
    }
    // serde_json writes UTF-8 only.
    String::from_utf8(out).unwrap_or_default()
}

/// `s` as a JSON string literal, quotes included, escaped as [`to_string`]
/// does.
pub fn escape(s: &str) -> String {
    to_string(s)
}

/// serde_json's compact output, with the escapes of `spec/control.md`.
struct Escaping;

impl Formatter for Escaping {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json has escaped U+0000..U+001F already; what is left of
        // the control characters is U+007F..U+009F.
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_control() {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        match escape {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => CompactFormatter.write_char_escape(w, other),
        }
    }
}

/// Parses one JSON value; only whitespace may surround it.
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict { depth: 0 }.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Builds a [`Value`], refusing duplicate keys; `depth` counts the arrays
/// and objects around the value.
#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
}

impl Strict {
    fn inner<E: de::Error>(self) -> Result<Strict, E> {
        match self.depth < MAX_JSON_DEPTH {
            true => Ok(Strict {
                depth: self.depth + 1,
            }),
            false => Err(E::custom(format_args!(
                "nested deeper than {MAX_JSON_DEPTH} levels"
            ))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.inner()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.inner()?;
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(inner)?;
            if fields.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_compact_json() {
        #[derive(Serialize)]
        struct S {
            ok: bool,
            n: u64,
            neg: i64,
            half: f64,
            none: Option<u64>,
            list: Vec<Value>,
        }
        let s = S {
            ok: true,
            n: 42,
            neg: -3,
            half: 0.5,
            none: None,
            list: vec![1.into(), "x".into(), Value::Null],
        };
        assert_eq!(
            to_string(&s),
            r#"{"ok":true,"n":42,"neg":-3,"half":0.5,"none":null,"list":[1,"x",null]}"#
        );
        assert_eq!(to_string(&u64::MAX), "18446744073709551615");
    }

    #[test]
    fn escapes_strings() {
        assert_eq!(escape("plain"), r#""plain""#);
        assert_eq!(escape("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(escape("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(
            escape("\u{0}\u{8}\u{c}\u{1b}[31m\u{7f}\u{9b}\u{a0}"),
            "\"\\u0000\\u0008\\u000c\\u001b[31m\\u007f\\u009b\u{a0}\""
        );
        assert_eq!(escape("café ☃ 𝄞"), "\"café ☃ 𝄞\"");
        assert_eq!(escape("</script>"), r#""</script>""#);
        // Keys are escaped the same way.
        let mut m = Map::new();
        m.insert("k\u{85}".into(), "v\u{7f}x".into());
        assert_eq!(to_string(&m), "{\"k\\u0085\":\"v\\u007fx\"}");
    }

    #[test]
    fn every_string_round_trips() {
        let mut all = String::new();
        for c in (0u32..0x300).chain([0x2028, 0xFFFF, 0x1F600]) {
            if let Some(c) = char::from_u32(c) {
                all.push(c);
            }
        }
        let text = escape(&all);
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert_eq!(parse(&text).unwrap(), Value::String(all));
    }

    #[test]
    fn numbers_are_exact() {
        for n in [0, 1 << 53, (1 << 53) + 1, u64::MAX - 1, u64::MAX] {
            let v = parse(&to_string(&n)).unwrap();
            assert_eq!(v.as_u64(), Some(n));
        }
        assert_eq!(
            parse("-9223372036854775808").unwrap().as_i64(),
            Some(i64::MIN)
        );
        assert_eq!(parse("0.5").unwrap().as_u64(), None);
    }

    #[test]
    fn refuses_invalid_json() {
        for bad in [
            "",
            " ",
            "nul",
            "True",
            "[1,]",
            "[1 2]",
            "{\"a\":1,}",
            "{a:1}",
            "{\"a\" 1}",
            "{\"a\":1,\"a\":2}",
            "[{\"b\":{\"a\":1,\"a\":1}}]",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+1",
            "1e999",
            "0x10",
            "\"abc",
            "\"a\nb\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\ud800\\u0041\"",
            "\"\\udc00\"",
            "[1] x",
            "{} {}",
            "NaN",
            "[",
            "{",
            "{\"a\"",
            "{\"a\":",
            "/* c */ 1",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse("{\"a\":1,\"a\":2}").unwrap_err().to_string();
        assert!(e.contains("duplicate key \"a\""), "{e}");
    }

    #[test]
    fn depth_is_limited() {
        let ok = "[".repeat(MAX_JSON_DEPTH) + &"]".repeat(MAX_JSON_DEPTH);
        assert!(parse(&ok).is_ok());
        let deep = "[".repeat(MAX_JSON_DEPTH + 1) + &"]".repeat(MAX_JSON_DEPTH + 1);
        assert!(parse(&deep).is_err());
        let objs = "{\"a\":".repeat(MAX_JSON_DEPTH + 1) + "1" + &"}".repeat(MAX_JSON_DEPTH + 1);
        assert!(parse(&objs).is_err());
        assert!(parse(&"[".repeat(1_000_000)).is_err());
    }

    #[test]
    fn never_panics_on_prefixes_and_mutations() {
        let text = r#"{"ok":true,"files":[{"name":"a\u00e9\"","n":-1.5e3,"x":[null,false]}]}"#;
        for end in 0..=text.len() {
            if let Some(prefix) = text.get(..end) {
                let _ = parse(prefix);
            }
        }
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            for b in [b'"', b'\\', b'{', b']', b',', b'0', b'e', 0, b'u'] {
                let mut m = bytes.to_vec();
                m[i] = b;
                if let Ok(s) = std::str::from_utf8(&m) {
                    let _ = parse(s);
                }
            }
        }
    }
}
