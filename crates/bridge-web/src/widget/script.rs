//! `GET /widget.js` (and the pinned `/widget/v1.js`): the browser side of the widget bridge,
//! embedded in the binary, served gzipped to browsers that accept it, with an ETag.

use std::io::Write as _;
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use sha2::Digest as _;

/// The script's source.
pub const SOURCE: &str = include_str!("widget.js");

struct Compiled {
    gzip: Vec<u8>,
    etag: String,
}

fn compiled() -> &'static Compiled {
    static C: OnceLock<Compiled> = OnceLock::new();
    C.get_or_init(|| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing to a Vec cannot fail.
        let _ = enc.write_all(SOURCE.as_bytes());
        let gzip = enc.finish().unwrap_or_default();
        let digest = sha2::Sha256::digest(SOURCE.as_bytes());
        Compiled {
            gzip,
            etag: format!("\"v1-{}\"", hex::encode(&digest[..8])),
        }
    })
}

/// The script gzipped (its size is what a browser downloads).
pub fn gzipped() -> &'static [u8] {
    &compiled().gzip
}

fn serve(headers: &HeaderMap, cache: &'static str) -> Response {
    let c = compiled();
    let mut r = Response::builder()
        .header(header::CONTENT_TYPE, "text/javascript; charset=utf-8")
        .header(header::CACHE_CONTROL, cache)
        .header(header::ETAG, &c.etag)
        .header(header::VARY, "Accept-Encoding")
        .header("x-content-type-options", "nosniff")
        // Any site may load the script; what it sends is checked at /widget/events.
        .header("cross-origin-resource-policy", "cross-origin");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == c.etag));
    if matches {
        return r
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default();
    }
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let body = if gzip {
        r = r.header(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        Body::from(c.gzip.as_slice())
    } else {
        Body::from(SOURCE)
    };
    r.body(body).unwrap_or_default()
}

/// `GET /widget.js`: an hour in caches, so a new release reaches pages within one.
pub(crate) async fn latest(headers: HeaderMap) -> Response {
    serve(&headers, "public, max-age=3600")
}

/// `GET /widget/v1.js`: this version, cacheable for a year.
pub(crate) async fn pinned(headers: HeaderMap) -> Response {
    serve(&headers, "public, max-age=31536000, immutable")
}
