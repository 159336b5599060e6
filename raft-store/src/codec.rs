//! How raft-log writes our values: a 4-byte big-endian length, then JSON.
//!
//! raft-log frames and checksums each record itself but hands the decoder a
//! stream that continues past the value, so the encoding must say where it
//! ends. A length prefix does that for any JSON value.

use std::io;

use raft_log::codeq::{Decode, Encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Records larger than this are refused on decode: a corrupt length must not
/// turn into a multi-gigabyte allocation.
const MAX_RECORD: usize = 256 * 1024 * 1024;

/// A value stored in raft-log as length-prefixed JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Json<T>(pub(crate) T);

impl<T: Serialize> Encode for Json<T> {
    fn encode<W: io::Write>(&self, mut w: W) -> Result<usize, io::Error> {
        let bytes = serde_json::to_vec(&self.0).map_err(io::Error::other)?;
        let len = u32::try_from(bytes.len())
            .ok()
            .filter(|&n| n as usize <= MAX_RECORD)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "raft log record too large")
            })?;
        w.write_all(&len.to_be_bytes())?;
        w.write_all(&bytes)?;
        Ok(4 + bytes.len())
    }
}

impl<T: DeserializeOwned> Decode for Json<T> {
    fn decode<R: io::Read>(mut r: R) -> Result<Self, io::Error> {
        // An incomplete record at the tail surfaces as UnexpectedEof from
        // read_exact, which raft-log treats as a torn last write.
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("raft log record claims {len} bytes"),
            ));
        }
        let mut buf = vec![0u8; len];
        r.read_exact(&mut buf)?;
        serde_json::from_slice(&buf)
            .map(Json)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values round-trip and the decoder stops at the end of its record.
    #[test]
    fn round_trip_and_framing() {
        let mut buf = vec![];
        Json(vec![1u32, 2, 3]).encode(&mut buf).unwrap();
        Json("next".to_owned()).encode(&mut buf).unwrap();
        let mut r = &buf[..];
        assert_eq!(Json::<Vec<u32>>::decode(&mut r).unwrap().0, vec![1, 2, 3]);
        assert_eq!(Json::<String>::decode(&mut r).unwrap().0, "next");
    }

    /// A torn record is an UnexpectedEof, a wild length is InvalidData.
    #[test]
    fn torn_and_corrupt() {
        let mut buf = vec![];
        Json("hello".to_owned()).encode(&mut buf).unwrap();
        let err = Json::<String>::decode(&buf[..buf.len() - 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = Json::<String>::decode(&[0xff, 0xff, 0xff, 0xff][..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
