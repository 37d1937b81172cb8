//! Sizes as the coreutils print them with `-h` (df, du, ls): powers of 1024 with a unit,
//! one decimal below 10, always rounded up.

/// `bytes` as `df -h` prints it: one decimal below 10 of a unit, rounded up.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["K", "M", "G", "T", "P", "E"];
    if bytes < 1024 {
        return bytes.to_string();
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{:.1}{}", (value * 10.0).ceil() / 10.0, UNITS[unit])
    } else {
        format!("{}{}", value.ceil(), UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn sizes_round_up_as_coreutils_print_them() {
        assert_eq!(human(512), "512");
        assert_eq!(human(1536), "1.5K");
        assert_eq!(human(10 << 20), "10M");
        assert_eq!(human((5 << 30) + 1), "5.1G");
    }
}
