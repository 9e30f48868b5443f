//! The scalar values every section uses (durations within bounds, IP
//! addresses, prefixes, integers within bounds), parsed with errors that
//! quote the value and say what is allowed: the key path is added by the
//! caller.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use humantime::DurationError;
use ipnet::IpNet;

/// How a duration prints in errors and docs ("50ms", "5m", "1h").
pub fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A duration from `min` to `max`, both included.
pub fn duration(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let allowed = || format!("allowed: {} to {}", show(min), show(max));
    let d = humantime::parse_duration(s).map_err(|e| {
        let why = match e {
            DurationError::Empty => "is empty".to_string(),
            // humantime says "expected number at 0" for "-1s".
            _ if s.trim_start().starts_with('-') => "is negative".to_string(),
            DurationError::UnknownUnit { unit, .. } if unit.is_empty() => "has no unit".to_string(),
            DurationError::UnknownUnit { unit, .. } => format!("has an unknown unit \"{unit}\""),
            DurationError::NumberOverflow => "is too large".to_string(),
            DurationError::NumberExpected(_) | DurationError::InvalidCharacter(_) => {
                "is not a duration".to_string()
            }
        };
        format!(
            "\"{s}\" {why}: write a duration like \"300ms\", \"9s\" or \"2m\" ({})",
            allowed()
        )
    })?;
    if d < min {
        return Err(format!("\"{s}\" is too short ({})", allowed()));
    }
    if d > max {
        return Err(format!("\"{s}\" is too long ({})", allowed()));
    }
    Ok(d)
}

/// An integer from `min` to `max`, both included.
pub fn in_range<T: PartialOrd + fmt::Display>(n: T, min: T, max: T) -> Result<T, String> {
    if n < min || n > max {
        Err(format!("{n} is out of range (allowed: {min} to {max})"))
    } else {
        Ok(n)
    }
}

pub fn ip(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| {
        format!("\"{s}\" is not an IP address (e.g. \"192.0.2.1\" or \"2001:db8::1\")")
    })
}

pub fn ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| format!("\"{s}\" is not an IPv4 address (e.g. \"192.0.2.1\")"))
}

pub fn ipv6(s: &str) -> Result<Ipv6Addr, String> {
    s.parse()
        .map_err(|_| format!("\"{s}\" is not an IPv6 address (e.g. \"2001:db8::1\")"))
}

/// `ADDRESS/LENGTH`, saying which half is wrong.
pub fn prefix(s: &str) -> Result<IpNet, String> {
    let Some((addr, len)) = s.split_once('/') else {
        return Err(match s.parse::<IpAddr>() {
            Ok(a) => format!(
                "\"{s}\" has no prefix length: write \"{s}/{}\"",
                if a.is_ipv4() { 32 } else { 128 }
            ),
            Err(_) => format!("\"{s}\" is not ADDRESS/LENGTH (e.g. \"192.0.2.100/32\")"),
        });
    };
    let addr: IpAddr = addr.parse().map_err(|_| {
        format!("\"{s}\": \"{addr}\" is not an IP address (e.g. \"192.0.2.100/32\")")
    })?;
    let (family, max) = if addr.is_ipv4() {
        ("IPv4", 32)
    } else {
        ("IPv6", 128)
    };
    let len: u8 = len.parse().ok().filter(|l| *l <= max).ok_or_else(|| {
        format!("\"{s}\": the prefix length \"{len}\" is not 0 to {max} (an {family} prefix)")
    })?;
    IpNet::new(addr, len).map_err(|e| format!("\"{s}\": {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn duration_errors_quote_the_value_and_the_bounds() {
        for (text, needle) in [
            ("-1s", "\"-1s\" is negative"),
            ("", "\"\" is empty"),
            ("5", "\"5\" has no unit"),
            ("1e9s", "\"1e9s\" has an unknown unit \"e\""),
            ("1000000000s", "\"1000000000s\" is too long"),
            ("99999999999999999999999s", "is too large"),
            ("soon", "\"soon\" is not a duration"),
        ] {
            let e = duration(text, MS, HOUR).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(e.contains("allowed: 1ms to 1h"), "{text}: {e}");
        }
        assert_eq!(duration("1h", MS, HOUR), Ok(HOUR));
        assert_eq!(duration("1ms", MS, HOUR), Ok(MS));
        assert!(duration("0s", MS, HOUR)
            .unwrap_err()
            .starts_with("\"0s\" is too short"));
    }

    #[test]
    fn prefix_errors_say_which_half_is_wrong() {
        assert_eq!(
            prefix("192.0.2.1/33").unwrap_err(),
            "\"192.0.2.1/33\": the prefix length \"33\" is not 0 to 32 (an IPv4 prefix)"
        );
        assert!(prefix("2001:db8::1/129")
            .unwrap_err()
            .contains("is not 0 to 128 (an IPv6 prefix)"));
        assert_eq!(
            prefix("300.1.1.1/32").unwrap_err(),
            "\"300.1.1.1/32\": \"300.1.1.1\" is not an IP address (e.g. \"192.0.2.100/32\")"
        );
        assert_eq!(
            prefix("192.0.2.1").unwrap_err(),
            "\"192.0.2.1\" has no prefix length: write \"192.0.2.1/32\""
        );
        assert_eq!(
            prefix("192.0.2.1/32").unwrap(),
            "192.0.2.1/32".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            in_range(101u32, 1, 100).unwrap_err(),
            "101 is out of range (allowed: 1 to 100)"
        );
    }
}
