//! Timestamps in e's records: written as RFC 3339 (`2026-12-01T11:22:24.123Z`), read as that
//! or as the `{secs_since_epoch, nanos_since_epoch}` struct that records of earlier versions of
//! e hold. Use with `#[serde(with = "crate::store::time")]`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serializer};

/// Writes `time` as RFC 3339, in UTC, to the millisecond.
pub fn serialize<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*time))
}

/// Reads RFC 3339, or the struct of earlier records.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Legacy {
            secs_since_epoch: u64,
            nanos_since_epoch: u32,
        },
    }
    match Written::deserialize(deserializer)? {
        Written::Text(text) => humantime::parse_rfc3339_weak(&text)
            .map_err(|err| serde::de::Error::custom(format!("`{text}` is not a timestamp: {err}"))),
        Written::Legacy {
            secs_since_epoch,
            nanos_since_epoch,
        } => Ok(SystemTime::UNIX_EPOCH
            + Duration::new(secs_since_epoch, nanos_since_epoch.min(999_999_999))),
    }
}

/// `time` as RFC 3339 in UTC, to the millisecond: how e shows every timestamp.
pub fn format(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, Deserialize)]
    struct Record {
        #[serde(with = "super")]
        at: SystemTime,
    }

    #[test]
    fn writes_rfc3339_and_reads_it_back_and_the_legacy_struct() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_588_144_123);
        let json = serde_json::to_string(&Record { at }).unwrap();
        assert_eq!(json, r#"{"at":"2025-12-01T11:22:24.123Z"}"#);
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back.at, at);
        let legacy: Record = serde_json::from_str(
            r#"{"at":{"secs_since_epoch":1764588144,"nanos_since_epoch":123000000}}"#,
        )
        .unwrap();
        assert_eq!(legacy.at, at);
        assert!(serde_json::from_str::<Record>(r#"{"at":"yesterday"}"#).is_err());
    }
}
