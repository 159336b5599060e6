//! Bounds on the framing of `multipart/form-data` bodies, checked on the
//! bytes before the multipart parser sees them.
//!
//! The parser (multer, as axum uses it) buffers everything until it finds
//! the first boundary, and every part header until its blank line, and
//! searches that buffer anew on each read: a body whose boundary never
//! comes costs memory equal to its size and time quadratic in it. The
//! [`Framing`] scanner follows the same framing with bounded memory and
//! refuses a preamble, a part header or a number of parts beyond the
//! configured bounds, and a body beyond the upload limit, before the parser
//! has buffered more than those bounds.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

/// The bounds on a multipart body's framing.
#[derive(Debug, Clone, Copy)]
pub struct MultipartLimits {
    /// Bytes before the first boundary.
    pub max_preamble_bytes: usize,
    /// Bytes of one part's header block.
    pub max_part_header_bytes: usize,
    /// Parts in one body.
    pub max_parts: usize,
    /// Bytes of the whole body.
    pub max_body_bytes: u64,
}

/// Which bound a multipart body broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// No boundary within the preamble bound.
    #[error("no multipart boundary within the first {0} bytes")]
    Preamble(usize),
    /// A part header with no end within the bound.
    #[error("a multipart part header exceeds {0} bytes")]
    PartHeader(usize),
    /// Too many parts.
    #[error("the multipart body has more than {0} parts")]
    TooManyParts(usize),
    /// The whole body is too large.
    #[error("the request body exceeds the limit of {0} bytes")]
    TooLarge(u64),
}

const CRLF_CRLF: &[u8] = b"\r\n\r\n";

enum Stage {
    /// Before the first delimiter; holds what was seen, which is bounded.
    Preamble(Vec<u8>),
    /// After a delimiter, up to the blank line that ends the part header;
    /// holds what was seen, which is bounded.
    Header(Vec<u8>),
    /// A part's content; holds the last bytes, in case a delimiter spans
    /// two chunks.
    Content(Vec<u8>),
    /// After the closing delimiter; nothing more is parsed.
    Epilogue,
}

/// Follows a multipart body's framing chunk by chunk, in memory bounded by
/// the limits, whatever the chunks hold.
pub struct Framing {
    limits: MultipartLimits,
    /// `CRLF--boundary`: what starts every delimiter.
    delimiter: Vec<u8>,
    stage: Stage,
    parts: usize,
    total: u64,
}

impl Framing {
    /// A scanner for a body with `boundary`.
    pub fn new(boundary: &str, limits: MultipartLimits) -> Self {
        let delimiter = [b"\r\n--".as_slice(), boundary.as_bytes()].concat();
        // The first delimiter may open the body without the CRLF that
        // precedes every other; a virtual CRLF lets one search find both.
        Self {
            limits,
            delimiter,
            stage: Stage::Preamble(b"\r\n".to_vec()),
            parts: 0,
            total: 0,
        }
    }

    /// Takes the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), FramingError> {
        self.total += chunk.len() as u64;
        if self.total > self.limits.max_body_bytes {
            return Err(FramingError::TooLarge(self.limits.max_body_bytes));
        }
        let mut rest = chunk;
        while !rest.is_empty() {
            rest = match &mut self.stage {
                Stage::Preamble(seen) => {
                    // Two for the virtual CRLF.
                    let bound = self.limits.max_preamble_bytes + 2 + self.delimiter.len();
                    let (found, after) = search_bounded(seen, rest, &self.delimiter, bound);
                    match found {
                        Some(left) => {
                            self.stage = Stage::Header(Vec::new());
                            left
                        }
                        None if after => {
                            return Err(FramingError::Preamble(self.limits.max_preamble_bytes));
                        }
                        None => &[],
                    }
                }
                Stage::Header(seen) => {
                    let start = seen.len();
                    if start < 2 {
                        let take = (2 - start).min(rest.len());
                        seen.extend_from_slice(&rest[..take]);
                        rest = &rest[take..];
                        if seen.len() < 2 {
                            continue;
                        }
                        if seen.as_slice() == b"--" {
                            self.stage = Stage::Epilogue;
                            continue;
                        }
                        self.parts += 1;
                        if self.parts > self.limits.max_parts {
                            return Err(FramingError::TooManyParts(self.limits.max_parts));
                        }
                    }
                    // The block runs from the CRLF ending the delimiter line
                    // (after transport padding) to the blank line.
                    let bound = self.limits.max_part_header_bytes + 2 + CRLF_CRLF.len();
                    let (found, after) = search_bounded(seen, rest, CRLF_CRLF, bound);
                    match found {
                        Some(left) => {
                            self.stage = Stage::Content(Vec::new());
                            left
                        }
                        None if after => {
                            return Err(FramingError::PartHeader(
                                self.limits.max_part_header_bytes,
                            ));
                        }
                        None => &[],
                    }
                }
                Stage::Content(tail) => match search_across(tail, rest, &self.delimiter) {
                    Some(left) => {
                        self.stage = Stage::Header(Vec::new());
                        left
                    }
                    None => &[],
                },
                Stage::Epilogue => &[],
            };
        }
        Ok(())
    }
}

/// Appends `chunk` to `seen`, at most up to `bound` bytes, and looks for
/// `pattern` in it. Gives the part of `chunk` after the pattern when found;
/// otherwise whether `seen` reached the bound without it.
fn search_bounded<'a>(
    seen: &mut Vec<u8>,
    chunk: &'a [u8],
    pattern: &[u8],
    bound: usize,
) -> (Option<&'a [u8]>, bool) {
    let before = seen.len();
    let take = bound.saturating_sub(before).min(chunk.len());
    seen.extend_from_slice(&chunk[..take]);
    // Only where a match could newly end.
    let from = before.saturating_sub(pattern.len() - 1);
    match memchr::memmem::find(&seen[from..], pattern) {
        Some(at) => {
            let end = from + at + pattern.len();
            (Some(&chunk[end - before..]), false)
        }
        None => (None, seen.len() >= bound),
    }
}

/// Looks for `pattern` in `chunk`, or spanning the end of the previous
/// chunks (`tail`) and the start of this one. Gives the part of `chunk`
/// after the pattern when found; otherwise keeps the last bytes in `tail`.
fn search_across<'a>(tail: &mut Vec<u8>, chunk: &'a [u8], pattern: &[u8]) -> Option<&'a [u8]> {
    let keep = pattern.len() - 1;
    if !tail.is_empty() {
        let head = &chunk[..keep.min(chunk.len())];
        let joined = [tail.as_slice(), head].concat();
        if let Some(at) = memchr::memmem::find(&joined, pattern)
            && at < tail.len()
        {
            let end = at + pattern.len() - tail.len();
            tail.clear();
            return Some(&chunk[end..]);
        }
    }
    if let Some(at) = memchr::memmem::find(chunk, pattern) {
        tail.clear();
        return Some(&chunk[at + pattern.len()..]);
    }
    if chunk.len() >= keep {
        tail.clear();
        tail.extend_from_slice(&chunk[chunk.len() - keep..]);
    } else {
        tail.extend_from_slice(chunk);
        let excess = tail.len().saturating_sub(keep);
        tail.drain(..excess);
    }
    None
}

/// A body stream that stops with a [`FramingError`] as soon as the bytes
/// break a bound, before the parser buffers them.
pub struct Guarded<S> {
    inner: S,
    framing: Framing,
    failed: bool,
}

impl<S> Guarded<S> {
    /// Guards `inner`, a multipart body with `boundary`.
    pub fn new(inner: S, boundary: &str, limits: MultipartLimits) -> Self {
        Self {
            inner,
            framing: Framing::new(boundary, limits),
            failed: false,
        }
    }
}

impl<S, E> Stream for Guarded<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<axum::BoxError>,
{
    type Item = Result<Bytes, axum::BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match self.framing.feed(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(e) => {
                    self.failed = true;
                    Poll::Ready(Some(Err(e.into())))
                }
            },
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: MultipartLimits = MultipartLimits {
        max_preamble_bytes: 64,
        max_part_header_bytes: 128,
        max_parts: 3,
        max_body_bytes: 1 << 20,
    };

    fn body(parts: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..parts {
            out.extend_from_slice(b"--XyZ\r\ncontent-disposition: form-data; name=\"p\"\r\n\r\n");
            out.extend_from_slice(
                format!("content {i} with --XyZ inside? no: -XyZ\r\n-").as_bytes(),
            );
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--XyZ--\r\nepilogue of any length is ignored");
        out
    }

    /// Feeds `bytes` in chunks of every size from 1 to 17, so delimiters
    /// and header ends fall across chunk edges at every offset.
    fn feed_all(bytes: &[u8], limits: MultipartLimits) -> Result<usize, FramingError> {
        let mut parts = None;
        for size in 1..=17 {
            let mut framing = Framing::new("XyZ", limits);
            for chunk in bytes.chunks(size) {
                framing.feed(chunk)?;
            }
            assert!(
                matches!(framing.stage, Stage::Epilogue),
                "chunk size {size}"
            );
            assert_eq!(*parts.get_or_insert(framing.parts), framing.parts);
        }
        Ok(parts.unwrap_or(0))
    }

    #[test]
    fn well_formed_bodies_pass_at_every_chunking() {
        assert_eq!(feed_all(&body(1), LIMITS), Ok(1));
        assert_eq!(feed_all(&body(3), LIMITS), Ok(3));
        let mut preamble = b"a short preamble\r\n".to_vec();
        preamble.extend_from_slice(&body(2));
        assert_eq!(feed_all(&preamble, LIMITS), Ok(2));
    }

    #[test]
    fn a_missing_boundary_is_refused_within_the_preamble_bound() {
        let mut framing = Framing::new("XyZ", LIMITS);
        let mut fed = 0;
        let err = loop {
            match framing.feed(&[b'a'; 10]) {
                Ok(()) => fed += 10,
                Err(e) => break e,
            }
        };
        assert_eq!(err, FramingError::Preamble(64));
        assert!(fed <= 64 + 10, "fed {fed} bytes before refusing");
        let Stage::Preamble(seen) = &framing.stage else {
            panic!("left the preamble")
        };
        assert!(seen.len() <= 64 + 2 + "\r\n--XyZ".len());
    }

    #[test]
    fn an_endless_part_header_is_refused() {
        let mut framing = Framing::new("XyZ", LIMITS);
        framing
            .feed(b"--XyZ\r\ncontent-disposition: form-data; name=\"file\"")
            .unwrap();
        let err = (0..100).find_map(|_| framing.feed(b"xxxxxxxxxx").err());
        assert_eq!(err, Some(FramingError::PartHeader(128)));
    }

    #[test]
    fn too_many_parts_are_refused() {
        assert_eq!(
            feed_all(&body(4), LIMITS),
            Err(FramingError::TooManyParts(3))
        );
    }

    #[test]
    fn the_whole_body_is_bounded() {
        let limits = MultipartLimits {
            max_body_bytes: 100,
            ..LIMITS
        };
        let mut framing = Framing::new("XyZ", limits);
        framing.feed(b"--XyZ\r\n\r\n").unwrap();
        assert_eq!(framing.feed(&[0; 100]), Err(FramingError::TooLarge(100)));
    }

    #[test]
    fn content_is_not_held() {
        let mut framing = Framing::new("XyZ", LIMITS);
        framing.feed(b"--XyZ\r\n\r\n").unwrap();
        for _ in 0..1000 {
            framing.feed(&[b'\r'; 1000]).unwrap();
        }
        let Stage::Content(tail) = &framing.stage else {
            panic!("left the content")
        };
        assert!(tail.len() < 8);
    }
}
