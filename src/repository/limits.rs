//! What a module version may ask of its confinement in `repository.yaml`: `limits:` (memory,
//! CPUs, processes) that replace e's defaults, and `user:`, the uid it runs as.
//!
//! Each value is checked as it is read, so a bad one is a load error that names the module,
//! version, field and line, and says what is accepted. Values keep the text the user wrote, so
//! `e info`, the cache and `e export` show them as written. The defaults themselves, and how a
//! run applies these values, live in `runtime/confinement.rs`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::selector::Scalar;

/// The resource limits of a module version; each one set replaces e's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The most memory the container may use (its `/tmp` included: a tmpfs is memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// How many CPUs' worth of time the container may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Cpus>,
    /// The most processes and threads that may exist in the container at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<Pids>,
}

impl Limits {
    /// Whether no limit is set (the version takes e's defaults).
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpus.is_none() && self.pids.is_none()
    }
}

/// The engine refuses a memory limit below 6 MiB.
pub const MIN_MEMORY_BYTES: i64 = 6 * 1024 * 1024;

/// The engine refuses a CPU limit below a hundredth of a CPU.
pub const MIN_NANO_CPUS: i64 = 10_000_000;

/// More CPUs than any machine e runs on; the limit is capped at the engine's CPUs anyway.
pub const MAX_CPUS: i64 = 4096;

/// Fewer processes than this cannot run a module: e's init and the module's own process count.
pub const MIN_PIDS: i64 = 8;

/// Linux never has more processes than this (`pid_max` at most 2^22).
pub const MAX_PIDS: i64 = 4_194_304;

/// The binary suffixes a memory limit may carry, with their factors.
const MEMORY_UNITS: [(&str, i64); 4] = [
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
];

/// A memory limit: `536870912`, `512Mi`, `1Gi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory {
    raw: String,
    bytes: i64,
}

impl Memory {
    /// The limit for `bytes`, written with the largest unit that divides it (`1Gi`).
    pub fn from_bytes(bytes: i64) -> Memory {
        let raw = MEMORY_UNITS
            .iter()
            .rev()
            .find(|(_, factor)| bytes != 0 && bytes % factor == 0)
            .map_or_else(
                || bytes.to_string(),
                |(unit, factor)| format!("{}{unit}", bytes / factor),
            );
        Memory { raw, bytes }
    }

    /// The limit in bytes.
    pub fn bytes(&self) -> i64 {
        self.bytes
    }
}

impl std::str::FromStr for Memory {
    type Err = String;

    fn from_str(text: &str) -> Result<Memory, String> {
        let accepted = "write a whole number of bytes, or one with `Ki`, `Mi`, `Gi` or `Ti`, like `512Mi` or `1Gi`";
        let trimmed = text.trim();
        let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = trimmed.split_at(digits);
        let factor = if unit.is_empty() {
            Some(1)
        } else {
            MEMORY_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, factor)| *factor)
        };
        let Some(factor) = factor.filter(|_| !number.is_empty()) else {
            return Err(format!("invalid memory limit `{text}`: {accepted}"));
        };
        let bytes = number
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(factor))
            .ok_or_else(|| format!("memory limit `{text}` is too large"))?;
        if bytes < MIN_MEMORY_BYTES {
            return Err(format!(
                "memory limit `{text}` is below the engine's minimum of 6Mi; {accepted}"
            ));
        }
        Ok(Memory {
            raw: trimmed.to_owned(),
            bytes,
        })
    }
}

/// A CPU limit: `1`, `0.5`, `2.5` CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpus {
    raw: String,
    nano: i64,
}

impl Cpus {
    /// The limit for `nano` billionths of a CPU, written as a decimal number (`2`, `0.5`).
    pub fn from_nano(nano: i64) -> Cpus {
        let whole = nano / 1_000_000_000;
        let fraction = nano % 1_000_000_000;
        let raw = if fraction == 0 {
            whole.to_string()
        } else {
            let digits = format!("{fraction:09}");
            format!("{whole}.{}", digits.trim_end_matches('0'))
        };
        Cpus { raw, nano }
    }

    /// The limit in billionths of a CPU, as the engine takes it.
    pub fn nano(&self) -> i64 {
        self.nano
    }
}

impl std::str::FromStr for Cpus {
    type Err = String;

    fn from_str(text: &str) -> Result<Cpus, String> {
        let accepted = format!("write a number of CPUs from 0.01 to {MAX_CPUS}, like `1` or `0.5`");
        let trimmed = text.trim();
        let (whole, fraction) = trimmed.split_once('.').unwrap_or((trimmed, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || (trimmed.contains('.') && fraction.is_empty())
        {
            return Err(format!("invalid CPU limit `{text}`: {accepted}"));
        }
        if fraction.len() > 9 {
            return Err(format!(
                "CPU limit `{text}` has more than 9 decimals; {accepted}"
            ));
        }
        let nano = whole
            .parse::<i64>()
            .ok()
            .filter(|whole| *whole <= MAX_CPUS)
            .map(|whole| {
                let fraction: i64 = format!("{fraction:0<9}").parse().unwrap_or(0);
                whole * 1_000_000_000 + fraction
            })
            .filter(|nano| (MIN_NANO_CPUS..=MAX_CPUS * 1_000_000_000).contains(nano))
            .ok_or_else(|| format!("CPU limit `{text}` is out of range; {accepted}"))?;
        Ok(Cpus {
            raw: trimmed.to_owned(),
            nano,
        })
    }
}

/// A limit on the processes (and threads) of a container: a whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pids(i64);

impl Pids {
    /// The limit.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::str::FromStr for Pids {
    type Err = String;

    fn from_str(text: &str) -> Result<Pids, String> {
        match text.trim().parse::<i64>() {
            Ok(pids) if (MIN_PIDS..=MAX_PIDS).contains(&pids) => Ok(Pids(pids)),
            _ => Err(format!(
                "invalid pids limit `{text}`: write a whole number from {MIN_PIDS} to {MAX_PIDS}, like `512` (threads count too)"
            )),
        }
    }
}

/// The uid and gid a module runs as: `"1000:1000"`, or `"0"` for root (the gid defaults to
/// the uid). Only numbers: a module's image need not have a user database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}

impl User {
    /// Whether this is the superuser.
    pub fn is_root(self) -> bool {
        self.uid == 0
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

impl std::str::FromStr for User {
    type Err = String;

    fn from_str(text: &str) -> Result<User, String> {
        // u32::MAX is `-1`, which means "no change" to the kernel: never a real id.
        let id = |part: &str| {
            part.parse::<u32>()
                .ok()
                .filter(|id| *id != u32::MAX && part.bytes().all(|b| b.is_ascii_digit()))
        };
        let parsed = match text.trim().split_once(':') {
            Some((uid, gid)) => id(uid).zip(id(gid)),
            None => id(text.trim()).map(|uid| (uid, uid)),
        };
        match parsed {
            Some((uid, gid)) => Ok(User { uid, gid }),
            None => Err(format!(
                "invalid user `{text}`: write a numeric `uid` or `uid:gid`, like `\"1000:1000\"`, or `\"0\"` to run as root (names are not accepted: the image may have no user database)"
            )),
        }
    }
}

/// Deserializes a value through its `FromStr`, from any scalar, so `pids: 512` and
/// `pids: "512"` both read. The error starts with ``field `NAME`: ``: serde_yaml's path stops
/// at the enclosing mapping, and `load.rs` uses the name to point at the value itself.
fn from_scalar<'de, D: Deserializer<'de>, T: std::str::FromStr<Err = String>>(
    deserializer: D,
    field: &str,
) -> Result<T, D::Error> {
    Scalar::deserialize_quantity(deserializer)?
        .parse()
        .map_err(|err| de::Error::custom(format!("field `{field}`: {err}")))
}

macro_rules! from_scalar {
    ($type:ty, $field:literal) => {
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                from_scalar(deserializer, $field)
            }
        }
    };
}

from_scalar!(Memory, "memory");
from_scalar!(Cpus, "cpus");
from_scalar!(Pids, "pids");
from_scalar!(User, "user");

impl Serialize for Memory {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl Serialize for Cpus {
    /// As a number, the way it is usually written, when the number says exactly the same.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Ok(whole) = self.raw.parse::<i64>() {
            return serializer.serialize_i64(whole);
        }
        match self.raw.parse::<f64>() {
            Ok(number) if number.to_string() == self.raw => serializer.serialize_f64(number),
            _ => serializer.serialize_str(&self.raw),
        }
    }
}

impl Serialize for Pids {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl Serialize for User {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_takes_bytes_and_binary_units() {
        let bytes = |text: &str| text.parse::<Memory>().map(|m| m.bytes());
        assert_eq!(bytes("512Mi"), Ok(512 << 20));
        assert_eq!(bytes("1Gi"), Ok(1 << 30));
        assert_eq!(bytes("2Ti"), Ok(2 << 40));
        assert_eq!(bytes("8192Ki"), Ok(8 << 20));
        assert_eq!(bytes("1073741824"), Ok(1 << 30));
        for bad in ["512m", "1G", "1.5Gi", "Gi", "", "-1Gi", "1 Gi", "lots"] {
            let err = bad.parse::<Memory>().expect_err(bad);
            assert!(err.contains("like `512Mi` or `1Gi`"), "{bad}: {err}");
        }
        let err = "1Mi".parse::<Memory>().expect_err("below the minimum");
        assert!(err.contains("minimum of 6Mi"), "{err}");
        let err = "99999999999Ti".parse::<Memory>().expect_err("too large");
        assert!(err.contains("too large"), "{err}");
    }

    #[test]
    fn memory_is_written_with_the_largest_unit() {
        assert_eq!(Memory::from_bytes(1 << 30).to_string(), "1Gi");
        assert_eq!(Memory::from_bytes(256 << 20).to_string(), "256Mi");
        assert_eq!(Memory::from_bytes(1536 << 20).to_string(), "1536Mi");
        assert_eq!(Memory::from_bytes(1000).to_string(), "1000");
    }

    #[test]
    fn cpus_take_decimals_without_rounding() {
        let nano = |text: &str| text.parse::<Cpus>().map(|c| c.nano());
        assert_eq!(nano("1"), Ok(1_000_000_000));
        assert_eq!(nano("0.5"), Ok(500_000_000));
        assert_eq!(nano("2.25"), Ok(2_250_000_000));
        assert_eq!(nano("0.01"), Ok(10_000_000));
        assert_eq!(nano("0.123456789"), Ok(123_456_789));
        for bad in ["", ".5", "1.", "-1", "1e3", "one", "1,5"] {
            let err = bad.parse::<Cpus>().expect_err(bad);
            assert!(err.contains("like `1` or `0.5`"), "{bad}: {err}");
        }
        for out in ["0", "0.001", "5000"] {
            let err = out.parse::<Cpus>().expect_err(out);
            assert!(err.contains("out of range"), "{out}: {err}");
        }
        assert_eq!(Cpus::from_nano(2_000_000_000).to_string(), "2");
        assert_eq!(Cpus::from_nano(1_500_000_000).to_string(), "1.5");
    }

    #[test]
    fn pids_are_a_whole_number_in_range() {
        assert_eq!("512".parse::<Pids>().map(Pids::get), Ok(512));
        for bad in ["0", "7", "1.5", "-1", "lots", "99999999"] {
            let err = bad.parse::<Pids>().expect_err(bad);
            assert!(err.contains("whole number from 8"), "{bad}: {err}");
        }
    }

    #[test]
    fn users_are_numeric() {
        assert_eq!("0".parse(), Ok(User { uid: 0, gid: 0 }));
        assert_eq!(
            "1000".parse(),
            Ok(User {
                uid: 1000,
                gid: 1000
            })
        );
        assert_eq!(
            "1000:100".parse(),
            Ok(User {
                uid: 1000,
                gid: 100
            })
        );
        for bad in [
            "root",
            "1000:",
            ":1000",
            "-1",
            "+5",
            "1:2:3",
            "4294967295",
            "",
        ] {
            let err = bad.parse::<User>().expect_err(bad);
            assert!(err.contains("numeric `uid` or `uid:gid`"), "{bad}: {err}");
        }
        assert_eq!(User { uid: 0, gid: 0 }.to_string(), "0:0");
    }

    #[test]
    fn values_round_trip_as_written() {
        let yaml = "memory: 512Mi\ncpus: 0.5\npids: 64\n";
        let limits: Limits = serde_yaml::from_str(yaml).expect("limits");
        assert_eq!(serde_yaml::to_string(&limits).expect("yaml"), yaml);
        let yaml = "memory: 1Gi\ncpus: 2\npids: 64\n";
        let limits: Limits = serde_yaml::from_str(yaml).expect("limits");
        assert_eq!(serde_yaml::to_string(&limits).expect("yaml"), yaml);
        let limits: Limits =
            serde_yaml::from_str("memory: 1073741824\ncpus: 2\n").expect("numbers");
        assert_eq!(limits.memory.as_ref().map(Memory::bytes), Some(1 << 30));
        let again: Limits =
            serde_yaml::from_str(&serde_yaml::to_string(&limits).expect("yaml")).expect("reread");
        assert_eq!(again, limits);
        let err = serde_yaml::from_str::<Limits>("memroy: 1Gi\n").expect_err("unknown field");
        assert!(err.to_string().contains("unknown field `memroy`"), "{err}");
    }
}
