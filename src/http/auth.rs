//! Bearer tokens for the API's write actions.

/// What a request's `Authorization` header is worth against the
/// configured token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Granted,
    /// Missing or wrong token: 401.
    Refused,
    /// No token is configured, so no request may write: 403.
    NoToken,
}

/// Checks `Authorization: Bearer TOKEN` against `token`, in time that
/// does not depend on where the two differ.
pub fn check(header: Option<&str>, token: Option<&str>) -> Auth {
    let Some(token) = token else {
        return Auth::NoToken;
    };
    let given = header
        .and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        Auth::Granted
    } else {
        Auth::Refused
    }
}

/// Equal bytes, compared without an early exit (the length itself is not
/// secret: tokens are long and random).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The token of a token file: its first line, trimmed; an empty one is
/// an error (it would let anyone in with an empty header).
pub fn token_from_file_text(text: &str) -> Result<String, String> {
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err("the token file's first line is empty".into());
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = Some("s3cret");
        assert_eq!(check(Some("Bearer s3cret"), t), Auth::Granted);
        assert_eq!(check(Some("bearer  s3cret "), t), Auth::Granted);
        assert_eq!(check(Some("Bearer s3cre"), t), Auth::Refused);
        assert_eq!(check(Some("Bearer s3cretx"), t), Auth::Refused);
        assert_eq!(check(Some("Basic s3cret"), t), Auth::Refused);
        assert_eq!(check(Some("s3cret"), t), Auth::Refused);
        assert_eq!(check(None, t), Auth::Refused);
        assert_eq!(check(Some("Bearer x"), None), Auth::NoToken);
        assert_eq!(token_from_file_text("abc \nignored").unwrap(), "abc");
        assert!(token_from_file_text("\nabc").is_err());
    }
}
