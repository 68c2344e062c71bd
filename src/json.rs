//! A small JSON writer and a small, strict JSON reader, enough for the
//! control protocol (`spec/control.md`). No dependencies.
//!
//! Writing: build a [`JsonValue`] (with [`obj`], [`arr`] and the `From`
//! impls) and format it with `to_string()` / [`JsonValue::write_to`], or
//! write strings yourself with [`escape`] / [`write_str`]. Output is
//! compact (no spaces, no newlines), so one value is always one line.
//!
//! Reading: [`parse`] accepts exactly RFC 8259 JSON text: no comments, no
//! trailing commas, no leading zeros, no lone surrogates, no raw control
//! characters in strings, no duplicate keys, nothing but whitespace after
//! the value. Nesting deeper than [`MAX_JSON_DEPTH`] is refused. It never
//! panics, whatever the input.

use std::fmt;

/// Deepest nesting of arrays and objects the reader follows.
pub const MAX_JSON_DEPTH: usize = 32;

/// A JSON value. Objects keep their fields in order.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    Null,
    Bool(bool),
    /// Every number. Integers up to 2^53 are exact, which covers every
    /// size STA deals with (files are at most 4 TiB).
    Num(f64),
    Str(String),
    Arr(Vec<JsonValue>),
    Obj(Vec<(String, JsonValue)>),
}

/// An object from `(key, value)` pairs, in that order.
///
/// ```
/// use sta::json::{obj, JsonValue};
/// let v = obj([("ok", true.into()), ("n", 3u64.into())]);
/// assert_eq!(v.to_string(), r#"{"ok":true,"n":3}"#);
/// ```
pub fn obj<'a>(fields: impl IntoIterator<Item = (&'a str, JsonValue)>) -> JsonValue {
    JsonValue::Obj(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// An array from values.
pub fn arr(items: impl IntoIterator<Item = JsonValue>) -> JsonValue {
    JsonValue::Arr(items.into_iter().collect())
}

impl JsonValue {
    /// The value of the first field named `key`, if this is an object.
    pub fn get(&self, key: &str) -> Option<&JsonValue> {
        match self {
            JsonValue::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            JsonValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            JsonValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            JsonValue::Num(n) => Some(*n),
            _ => None,
        }
    }

    /// The number if it is a whole number in `0..=2^53` (the range where
    /// `f64` is exact).
    pub fn as_u64(&self) -> Option<u64> {
        const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        match self {
            JsonValue::Num(n) if n.fract() == 0.0 && (0.0..=MAX_EXACT).contains(n) => {
                Some(*n as u64)
            }
            _ => None,
        }
    }

    /// [`as_u64`](Self::as_u64) narrowed to `u32`.
    pub fn as_u32(&self) -> Option<u32> {
        self.as_u64().and_then(|n| u32::try_from(n).ok())
    }

    pub fn as_array(&self) -> Option<&[JsonValue]> {
        match self {
            JsonValue::Arr(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[(String, JsonValue)]> {
        match self {
            JsonValue::Obj(fields) => Some(fields),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, JsonValue::Null)
    }

    /// Appends the compact JSON text of this value to `out`.
    pub fn write_to(&self, out: &mut String) {
        match self {
            JsonValue::Null => out.push_str("null"),
            JsonValue::Bool(true) => out.push_str("true"),
            JsonValue::Bool(false) => out.push_str("false"),
            JsonValue::Num(n) => write_num(out, *n),
            JsonValue::Str(s) => write_str(out, s),
            JsonValue::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_to(out);
                }
                out.push(']');
            }
            JsonValue::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, key);
                    out.push(':');
                    value.write_to(out);
                }
                out.push('}');
            }
        }
    }
}

impl fmt::Display for JsonValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_to(&mut s);
        f.write_str(&s)
    }
}

impl From<bool> for JsonValue {
    fn from(b: bool) -> Self {
        JsonValue::Bool(b)
    }
}

impl From<&str> for JsonValue {
    fn from(s: &str) -> Self {
        JsonValue::Str(s.to_owned())
    }
}

impl From<String> for JsonValue {
    fn from(s: String) -> Self {
        JsonValue::Str(s)
    }
}

impl From<f64> for JsonValue {
    fn from(n: f64) -> Self {
        JsonValue::Num(n)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for JsonValue {
            /// Exact up to 2^53.
            fn from(n: $t) -> Self {
                JsonValue::Num(n as f64)
            }
        }
    )*};
}
from_int!(u8, u16, u32, u64, usize, i32, i64);

impl From<Vec<JsonValue>> for JsonValue {
    fn from(items: Vec<JsonValue>) -> Self {
        JsonValue::Arr(items)
    }
}

impl<T: Into<JsonValue>> From<Option<T>> for JsonValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(JsonValue::Null, Into::into)
    }
}

// ---------------------------------------------------------------------------
// Writing

/// `s` as a JSON string literal, quotes included.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_str(&mut out, s);
    out
}

/// Appends `s` to `out` as a JSON string literal, quotes included: `"` and
/// `\` are escaped, control characters (U+0000..U+001F, U+007F..U+009F)
/// become `\n`, `\r`, `\t` or `\u00XX`, so the text is safe to print on a
/// terminal; everything else is written as is (UTF-8).
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whole numbers below 2^53 are written without a fraction; other finite
/// numbers in Rust's shortest round-trip form; NaN and infinities (which
/// JSON cannot express) as `null`.
fn write_num(out: &mut String, n: f64) {
    if !n.is_finite() {
        out.push_str("null");
    } else if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        out.push_str(&format!("{}", n as i64));
    } else {
        // Debug gives `1e300`, `1.5e-7`, `0.25`: all valid JSON numbers.
        out.push_str(&format!("{n:?}"));
    }
}

// ---------------------------------------------------------------------------
// Reading

/// Why a text is not acceptable JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    pub message: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for JsonError {}

/// Parses one JSON value; only whitespace may surround it.
pub fn parse(text: &str) -> Result<JsonValue, JsonError> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    p.skip_ws();
    let value = p.value(0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(p.err("unexpected data after the value"));
    }
    Ok(value)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, message: &'static str) -> JsonError {
        JsonError {
            offset: self.pos,
            message,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8, message: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(message))
        }
    }

    fn literal(&mut self, word: &[u8], value: JsonValue) -> Result<JsonValue, JsonError> {
        if self.s.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.err("unknown literal (expected true, false or null)"))
        }
    }

    /// A value; `depth` counts the arrays and objects around it.
    fn value(&mut self, depth: usize) -> Result<JsonValue, JsonError> {
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'n') => self.literal(b"null", JsonValue::Null),
            Some(b't') => self.literal(b"true", JsonValue::Bool(true)),
            Some(b'f') => self.literal(b"false", JsonValue::Bool(false)),
            Some(b'"') => self.string().map(JsonValue::Str),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                if depth >= MAX_JSON_DEPTH {
                    return Err(self.err("nested too deeply"));
                }
                self.array(depth + 1)
            }
            Some(b'{') => {
                if depth >= MAX_JSON_DEPTH {
                    return Err(self.err("nested too deeply"));
                }
                self.object(depth + 1)
            }
            Some(_) => Err(self.err("expected a value")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<JsonValue, JsonError> {
        self.pos += 1; // [
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(JsonValue::Arr(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(JsonValue::Arr(items));
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<JsonValue, JsonError> {
        let start = self.pos;
        self.pos += 1; // {
        let mut fields: Vec<(String, JsonValue)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(JsonValue::Obj(fields));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':', "expected ':' after the key")?;
            self.skip_ws();
            let value = self.value(depth)?;
            fields.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
        let mut keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(JsonError {
                offset: start,
                message: "object has a duplicate key",
            });
        }
        Ok(JsonValue::Obj(fields))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(digits) = self.s.get(self.pos..self.pos + 4) else {
            return Err(self.err("truncated \\u escape"));
        };
        let mut n = 0u32;
        for &d in digits {
            let Some(v) = (d as char).to_digit(16) else {
                return Err(self.err("\\u must be followed by four hex digits"));
            };
            n = n * 16 + v;
        }
        self.pos += 4;
        Ok(n)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            // Copy the run of plain bytes at once. The input is a `&str`,
            // and the run stops only at ASCII bytes, so it is valid UTF-8.
            let run = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            match std::str::from_utf8(&self.s[run..self.pos]) {
                Ok(text) => out.push_str(text),
                Err(_) => return Err(self.err("invalid UTF-8")),
            }
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err("unterminated string"));
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let c = self.unicode_escape()?;
                            out.push(c);
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.err("unknown escape"));
                        }
                    }
                }
                Some(_) => return Err(self.err("raw control character in a string")),
            }
        }
    }

    /// After `\u`: one code point, or a surrogate pair `\uD8xx\uDCxx`.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let hi = self.hex4()?;
        let code = match hi {
            0xD800..=0xDBFF => {
                if self.s.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.err("high surrogate without a low surrogate"));
                }
                self.pos += 2;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return Err(self.err("high surrogate without a low surrogate"));
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.err("lone low surrogate")),
            n => n,
        };
        char::from_u32(code).ok_or_else(|| self.err("invalid code point"))
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<JsonValue, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.err("leading zero in a number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected a digit in the exponent"));
            }
        }
        // The slice is ASCII by construction.
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("x");
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(JsonValue::Num(n)),
            _ => Err(JsonError {
                offset: start,
                message: "number out of range",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_at(text: &str) -> usize {
        match parse(text) {
            Ok(v) => panic!("{text:?} parsed as {v:?}"),
            Err(e) => e.offset,
        }
    }

    #[test]
    fn writes_compact_json() {
        let v = obj([
            ("ok", true.into()),
            ("n", 42u64.into()),
            ("neg", (-3i64).into()),
            ("half", 0.5.into()),
            ("nan", f64::NAN.into()),
            ("none", Option::<u64>::None.into()),
            ("list", arr([1u32.into(), "x".into(), JsonValue::Null])),
            ("empty", obj([])),
        ]);
        assert_eq!(
            v.to_string(),
            r#"{"ok":true,"n":42,"neg":-3,"half":0.5,"nan":null,"none":null,"list":[1,"x",null],"empty":{}}"#
        );
        assert_eq!(
            JsonValue::from(4_398_046_511_104u64).to_string(),
            "4398046511104"
        );
        assert_eq!(JsonValue::from(1e300).to_string(), "1e300");
    }

    #[test]
    fn escapes_strings() {
        assert_eq!(escape("plain"), r#""plain""#);
        assert_eq!(escape("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(escape("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(
            escape("\u{0}\u{1b}[31m\u{7f}\u{9b}\u{a0}"),
            "\"\\u0000\\u001b[31m\\u007f\\u009b\u{a0}\""
        );
        assert_eq!(escape("café ☃ 𝄞"), "\"café ☃ 𝄞\"");
        assert_eq!(escape("</script>"), r#""</script>""#);
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
        assert_eq!(parse(&text), Ok(JsonValue::Str(all)));
    }

    #[test]
    fn values_round_trip() {
        let v = obj([
            ("name", "a b\"c".into()),
            ("length", 1_073_741_824u64.into()),
            ("rate", 1234.5.into()),
            ("local", false.into()),
            (
                "nested",
                arr([obj([("x", JsonValue::Null)]), arr([]), (-0.25).into()]),
            ),
        ]);
        assert_eq!(parse(&v.to_string()), Ok(v));
    }

    #[test]
    fn reads_valid_json() {
        let v = parse(" {\"a\" : [1, -2.5e2, 0, 1E+2, true, false, null, \"\\u00e9\\ud834\\udd1e\\/\\b\\f\"] }\r\n")
            .unwrap();
        let a = v.get("a").and_then(JsonValue::as_array).unwrap();
        assert_eq!(a[0].as_u64(), Some(1));
        assert_eq!(a[1].as_f64(), Some(-250.0));
        assert_eq!(a[1].as_u64(), None);
        assert_eq!(a[2].as_u64(), Some(0));
        assert_eq!(a[3].as_u32(), Some(100));
        assert_eq!(a[4].as_bool(), Some(true));
        assert_eq!(a[5].as_bool(), Some(false));
        assert!(a[6].is_null());
        assert_eq!(a[7].as_str(), Some("é𝄞/\u{8}\u{c}"));
        assert_eq!(parse("\"x\"").unwrap().as_str(), Some("x"));
        assert_eq!(parse("0.5").unwrap().as_u64(), None);
        assert_eq!(parse("9007199254740993").unwrap().as_u64(), Some(1 << 53));
        assert_eq!(parse("1e20").unwrap().as_u64(), None);
        assert_eq!(parse("4294967296").unwrap().as_u32(), None);
        assert_eq!(v.get("missing"), None);
        assert_eq!(JsonValue::Null.get("a"), None);
        assert_eq!(v.as_object().map(<[_]>::len), Some(1));
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
        assert_eq!(err_at("[1,]"), 3);
        assert_eq!(err_at("{\"a\":1,\"a\":2}"), 0);
        assert_eq!(err_at("  [1] x"), 6);
    }

    #[test]
    fn depth_is_limited() {
        let ok = "[".repeat(MAX_JSON_DEPTH) + &"]".repeat(MAX_JSON_DEPTH);
        assert!(parse(&ok).is_ok());
        let deep = "[".repeat(MAX_JSON_DEPTH + 1) + &"]".repeat(MAX_JSON_DEPTH + 1);
        assert_eq!(err_at(&deep), MAX_JSON_DEPTH);
        let objs = "{\"a\":".repeat(MAX_JSON_DEPTH + 1) + "1" + &"}".repeat(MAX_JSON_DEPTH + 1);
        assert!(parse(&objs).is_err());
        // Far deeper than the stack would allow without the limit.
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
