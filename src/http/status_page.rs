//! The status page, `GET /` of both daemons' `--http` listener: one HTML
//! document (`status_page.html`) with its CSS and JavaScript inline,
//! compiled into the binary. It loads nothing from elsewhere (its
//! Content-Security-Policy forbids it), polls the daemon's own JSON API
//! (spec/http.md) about once a second, and puts every string it gets into
//! the page as text, never as markup. On `sta-peerd` it shows the files,
//! the selected file's piece map, swarm and sources, and the rates of the
//! last minutes; on `sta-trackerd`, the catalog and each file's holders.

use super::Response;

/// The document.
pub const HTML: &str = include_str!("status_page.html");

pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// Inline script and style, requests to this origin only, nothing else.
pub const POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src data:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The answer to `GET /` (and `HEAD /`).
pub fn response() -> Response {
    Response::new(200, CONTENT_TYPE, HTML.as_bytes().to_vec())
        .with_header("Content-Security-Policy", POLICY)
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "no-referrer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let page = HTML.to_ascii_lowercase();
        for needle in [
            "src=", "href=", "@import", "url(", "//cdn", "<iframe", "<object",
        ] {
            assert!(!page.contains(needle), "the page contains {needle:?}");
        }
        // The only absolute URL is the SVG namespace, which is a name.
        let urls = page.matches("http://").count() + page.matches("https://").count();
        assert_eq!(urls, page.matches("http://www.w3.org/2000/svg").count());
    }

    #[test]
    fn the_page_inserts_data_as_text_only() {
        for needle in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!HTML.contains(needle), "the page uses {needle}");
        }
    }

    #[test]
    fn the_page_reads_the_api() {
        for path in [
            "/api/v1/status",
            "/api/v1/files/",
            "/api/v1/catalog",
            "/api/v1/swarms/",
        ] {
            assert!(HTML.contains(path), "the page never asks {path}");
        }
    }

    #[test]
    fn the_answer_is_html_with_a_policy() {
        let bytes = response().encode(false);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Type: text/html; charset=utf-8\r\n"));
        assert!(text.contains("Content-Security-Policy: default-src 'none';"));
        assert!(text.ends_with("</html>\n"));
    }
}
