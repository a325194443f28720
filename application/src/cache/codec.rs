//! The bytes of a cache entry: a small header (format, kind, expiry) and the
//! value in the namespace's serializer.
//!
//! The expiry travels with the entry, so a tier that cannot know an entry's
//! remaining TTL (an in-process tier filled from Redis) can never make it live
//! longer: a reader treats an entry past its expiry as a miss.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::settings::Codec;

const FORMAT: u8 = 1;
const VALUE: u8 = 0;
const ABSENT: u8 = 1;
const HEADER: usize = 10;

/// Why bytes could not become a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Encoding failed.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// Decoding failed (corrupt, or written by another format version).
    #[error("cannot decode: {0}")]
    Decode(String),
}

/// A decoded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<T> {
    /// A cached value.
    Value(T),
    /// A cached "not found".
    Absent,
    /// Past its expiry: a miss.
    Expired,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Encodes a value with the codec.
///
/// # Errors
/// [`CodecError::Encode`] when the value cannot be serialized.
pub fn encode_value<T: Serialize>(codec: Codec, value: &T) -> Result<Vec<u8>, CodecError> {
    match codec {
        Codec::Json => serde_json::to_vec(value).map_err(|e| CodecError::Encode(e.to_string())),
        // Named fields: robust to `default`/`skip` attributes and field order.
        Codec::MessagePack => {
            rmp_serde::to_vec_named(value).map_err(|e| CodecError::Encode(e.to_string()))
        }
    }
}

/// Decodes a value with the codec.
///
/// # Errors
/// [`CodecError::Decode`] when the bytes are not a `T`.
pub fn decode_value<T: DeserializeOwned>(codec: Codec, bytes: &[u8]) -> Result<T, CodecError> {
    match codec {
        Codec::Json => serde_json::from_slice(bytes).map_err(|e| CodecError::Decode(e.to_string())),
        Codec::MessagePack => {
            rmp_serde::from_slice(bytes).map_err(|e| CodecError::Decode(e.to_string()))
        }
    }
}

/// An entry for `value` (`None` = "not found") expiring after `ttl`.
///
/// # Errors
/// [`CodecError::Encode`] when the value cannot be serialized.
pub fn encode<T: Serialize>(
    codec: Codec,
    value: Option<&T>,
    ttl: Duration,
) -> Result<Vec<u8>, CodecError> {
    let expires = now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT);
    out.push(if value.is_some() { VALUE } else { ABSENT });
    out.extend_from_slice(&expires.to_be_bytes());
    if let Some(v) = value {
        out.extend_from_slice(&encode_value(codec, v)?);
    }
    Ok(out)
}

/// Reads an entry.
///
/// # Errors
/// [`CodecError::Decode`] for bytes this format did not write.
pub fn decode<T: DeserializeOwned>(codec: Codec, bytes: &[u8]) -> Result<Entry<T>, CodecError> {
    let (head, body) = bytes
        .split_at_checked(HEADER)
        .ok_or_else(|| CodecError::Decode("entry too short".to_owned()))?;
    if head[0] != FORMAT {
        return Err(CodecError::Decode(format!("unknown format {}", head[0])));
    }
    let mut expires = [0u8; 8];
    expires.copy_from_slice(&head[2..HEADER]);
    if u64::from_be_bytes(expires) <= now_ms() {
        return Ok(Entry::Expired);
    }
    match head[1] {
        VALUE => decode_value(codec, body).map(Entry::Value),
        ABSENT => Ok(Entry::Absent),
        k => Err(CodecError::Decode(format!("unknown entry kind {k}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_expire() {
        for codec in [Codec::Json, Codec::MessagePack] {
            let bytes = encode(codec, Some(&vec![1u32, 2]), Duration::from_secs(5)).unwrap();
            assert_eq!(
                decode::<Vec<u32>>(codec, &bytes).unwrap(),
                Entry::Value(vec![1, 2])
            );
            let absent = encode::<u32>(codec, None, Duration::from_secs(5)).unwrap();
            assert_eq!(decode::<u32>(codec, &absent).unwrap(), Entry::Absent);
            let old = encode(codec, Some(&1u32), Duration::ZERO).unwrap();
            assert_eq!(decode::<u32>(codec, &old).unwrap(), Entry::Expired);
        }
        assert!(decode::<u32>(Codec::Json, b"xx").is_err());
        assert!(decode::<u32>(Codec::Json, &[9; 12]).is_err());
    }
}
