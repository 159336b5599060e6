//! Compact encodings of the prints kept for matching, for their JSON form.
//!
//! A video's frame signatures are 380 values in 0..=2 per frame at 5 frames
//! a second: as JSON numbers a six-hour video takes about 80 MB. Packed five
//! values to a byte (3^5 = 243) and written in base64 it takes about 11 MB;
//! a Chromaprint vector as little-endian bytes in base64 is about 2.5 times
//! smaller than as decimal numbers. Both decoders still accept the plain
//! JSON arrays that earlier prints were stored as.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serializer};

/// `#[serde(with)]` module for frame signatures: serialised as
/// `"<values per frame>:<frames>:<base64 of the packed values>"`.
pub mod trits {
    use super::*;

    /// Writes the signatures packed. Every frame must have the length of
    /// the first, and every value be 0, 1 or 2.
    pub fn serialize<S: Serializer>(frames: &[Vec<i8>], serializer: S) -> Result<S::Ok, S::Error> {
        let width = frames.first().map_or(0, Vec::len);
        let mut packed = Vec::with_capacity(frames.len() * width.div_ceil(5));
        let mut group = 0u8;
        let mut filled = 0u32;
        for frame in frames {
            if frame.len() != width {
                return Err(serde::ser::Error::custom(
                    "frame signatures differ in length",
                ));
            }
            for &value in frame {
                let value = u8::try_from(value)
                    .ok()
                    .filter(|v| *v <= 2)
                    .ok_or_else(|| {
                        serde::ser::Error::custom("a frame signature value is not 0, 1 or 2")
                    })?;
                group += value * 3u8.pow(filled);
                filled += 1;
                if filled == 5 {
                    packed.push(group);
                    group = 0;
                    filled = 0;
                }
            }
        }
        if filled > 0 {
            packed.push(group);
        }
        serializer.serialize_str(&format!(
            "{width}:{}:{}",
            frames.len(),
            BASE64_STANDARD.encode(packed)
        ))
    }

    /// Reads packed signatures, or the plain arrays of earlier prints.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<i8>>, D::Error> {
        struct Frames;
        impl<'de> Visitor<'de> for Frames {
            type Value = Vec<Vec<i8>>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("packed frame signatures or arrays of values")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                let mut parts = text.splitn(3, ':');
                let (Some(width), Some(count), Some(data)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(E::custom(
                        "packed frame signatures need a width and a count",
                    ));
                };
                let width: usize = width.parse().map_err(E::custom)?;
                let count: usize = count.parse().map_err(E::custom)?;
                let packed = BASE64_STANDARD.decode(data).map_err(E::custom)?;
                let mut values = Vec::with_capacity(packed.len() * 5);
                for byte in packed {
                    if byte >= 243 {
                        return Err(E::custom("a packed group is over 242"));
                    }
                    let mut rest = byte;
                    for _ in 0..5 {
                        values.push((rest % 3) as i8);
                        rest /= 3;
                    }
                }
                let total = width
                    .checked_mul(count)
                    .ok_or_else(|| E::custom("packed frame signatures are too large"))?;
                // The last group may be padded: at most four values.
                if values.len() < total || values.len() - total >= 5 {
                    return Err(E::custom(
                        "packed frame signatures do not hold the frames they declare",
                    ));
                }
                if width == 0 {
                    return Ok(vec![Vec::new(); count]);
                }
                values.truncate(total);
                Ok(values.chunks(width).map(<[i8]>::to_vec).collect())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut frames = Vec::new();
                while let Some(frame) = seq.next_element::<Vec<i8>>()? {
                    frames.push(frame);
                }
                Ok(frames)
            }
        }
        deserializer.deserialize_any(Frames)
    }
}

/// `#[serde(with)]` module for a Chromaprint vector: serialised as base64
/// of its items as little-endian bytes.
pub mod items {
    use super::*;

    /// Writes the items packed.
    pub fn serialize<S: Serializer>(items: &[u32], serializer: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = items.iter().flat_map(|i| i.to_le_bytes()).collect();
        serializer.serialize_str(&BASE64_STANDARD.encode(bytes))
    }

    /// Reads packed items, or the plain array of earlier prints.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u32>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Packed(String),
            Plain(Vec<u32>),
        }
        match Form::deserialize(deserializer)? {
            Form::Plain(items) => Ok(items),
            Form::Packed(text) => {
                let bytes = BASE64_STANDARD.decode(text).map_err(de::Error::custom)?;
                if bytes.len() % 4 != 0 {
                    return Err(de::Error::custom("packed items are not whole 32-bit words"));
                }
                Ok(bytes
                    .chunks_exact(4)
                    .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Print {
        #[serde(with = "trits")]
        frames: Vec<Vec<i8>>,
        #[serde(with = "items")]
        items: Vec<u32>,
    }

    /// Packed prints round-trip exactly, are several times smaller than
    /// the plain JSON, and the plain JSON of earlier prints still decodes.
    #[test]
    fn packed_round_trip_and_legacy() {
        let frames: Vec<Vec<i8>> = (0..200)
            .map(|f| (0..380).map(|v| ((f * 7 + v * 13) % 3) as i8).collect())
            .collect();
        let items: Vec<u32> = (0..1000u32)
            .map(|i| i.wrapping_mul(2_654_435_761))
            .collect();
        let print = Print { frames, items };
        let packed = serde_json::to_string(&print).unwrap();
        assert_eq!(serde_json::from_str::<Print>(&packed).unwrap(), print);
        let plain = serde_json::json!({"frames": print.frames, "items": print.items}).to_string();
        assert_eq!(serde_json::from_str::<Print>(&plain).unwrap(), print);
        assert!(
            packed.len() * 5 < plain.len(),
            "{} vs {}",
            packed.len(),
            plain.len()
        );
        // A frame whose width does not divide into groups of five.
        let odd = Print {
            frames: vec![vec![2, 1, 0], vec![0, 0, 2]],
            items: vec![],
        };
        let text = serde_json::to_string(&odd).unwrap();
        assert_eq!(serde_json::from_str::<Print>(&text).unwrap(), odd);
        for bad in [
            r#""3:2:////""#,
            r#""x:1:AA==""#,
            r#""no width""#,
            r#""3:9:AA==""#,
        ] {
            let json = format!(r#"{{"frames":{bad},"items":[]}}"#);
            assert!(serde_json::from_str::<Print>(&json).is_err(), "{bad}");
        }
    }
}
