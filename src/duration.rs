//! Durations as users write them: `0`, `500ms`, `30s`, `10m`, `1h30m` (the CRD
//! pattern accepts exactly these).

use std::time::Duration;

/// Parses a duration; `None` when it does not match the format.
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(number), 2)
        } else if rest.starts_with('s') {
            (Duration::from_secs(number), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(number.checked_mul(60)?), 1)
        } else if rest.starts_with('h') {
            (Duration::from_secs(number.checked_mul(3600)?), 1)
        } else {
            return None;
        };
        total = total.checked_add(unit)?;
        rest = &rest[len..];
    }
    Some(total)
}

/// For clap: parses or explains the format.
pub fn parse_arg(text: &str) -> Result<Duration, String> {
    parse(text)
        .ok_or_else(|| format!("{text:?} is not a duration such as 0, 500ms, 30s, 10m or 1h30m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("2m5s"), Some(Duration::from_secs(125)));
        for bad in ["", "5", "1d", "m", "-1s", "1.5h", "10 m"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn agrees_with_the_crd_pattern() {
        // The CRD's pattern and this parser accept the same strings.
        assert_eq!(crate::crd::DURATION_PATTERN, r"^(0|([0-9]+(ms|s|m|h))+)$");
    }
}
