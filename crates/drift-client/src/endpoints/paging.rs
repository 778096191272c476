//! Lazy pagination (the next page is fetched only when the previous one is consumed), the
//! `Link` header, and request bodies.

use futures::stream::{self, Stream, TryStreamExt};

use serde_json::Value;

use crate::error::{Error, Result};

pub(super) fn pages<T, S, F, Fut>(first: S, fetch: F) -> impl Stream<Item = Result<T>>
where
    F: FnMut(S) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<S>)>>,
{
    let mut fetch = fetch;
    stream::try_unfold(Some(first), move |state| {
        let fut = state.map(&mut fetch);
        async move {
            match fut {
                None => Ok(None),
                Some(f) => {
                    let (items, next) = f.await?;
                    // An empty page ends the walk even if it carries a next link.
                    let next = if items.is_empty() { None } else { next };
                    Ok(Some((items, next)))
                }
            }
        }
    })
    .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
    .try_flatten()
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|source| Error::Decode {
        endpoint: "request body",
        source,
    })
}

/// The target of `rel='next'` (or `rel="next"`) in a `Link` header.
pub(super) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(['\'', '"'], "");
            p == "rel=next"
        });
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn link_headers_with_either_quote_style_are_followed() {
        assert_eq!(
            next_link("</contacts?email=a&offset=2>; rel='next'").as_deref(),
            Some("/contacts?email=a&offset=2")
        );
        assert_eq!(
            next_link("<https://x/y>; rel=\"prev\", <https://x/z>; rel=\"next\"").as_deref(),
            Some("https://x/z")
        );
        assert_eq!(next_link("<https://x/y>; rel=\"prev\""), None);
    }
}
