//! The times `touch -t` and `touch -d` take, in this machine's local time: `-t
//! [[CC]YY]MMDDhhmm[.ss]` as POSIX touch reads it, and for `-d` the forms scripts use —
//! `@SECONDS`, `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` (or with `T`) — not GNU's whole
//! free-form grammar. And the one broken-down local time (`local_tm`) that ls, stat and
//! these share.

/// Seconds since the epoch of local time `year-month-day hour:minute:second`, if valid.
fn local(year: i32, month: u32, day: u32, hms: (u32, u32, u32)) -> Option<i64> {
    let (hour, minute, second) = hms;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // SAFETY: mktime reads and normalises the struct it is given, which lives across the
    // call.
    let seconds = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_year = year - 1900;
        tm.tm_mon = month as i32 - 1;
        tm.tm_mday = day as i32;
        tm.tm_hour = hour as i32;
        tm.tm_min = minute as i32;
        tm.tm_sec = second as i32;
        tm.tm_isdst = -1;
        let seconds = libc::mktime(&mut tm);
        // mktime moves 31 April to 1 May: such a date does not exist.
        if tm.tm_mday != day as i32 || tm.tm_mon != month as i32 - 1 {
            return None;
        }
        seconds
    };
    (seconds != -1).then_some(seconds)
}

fn number(text: &str) -> Option<u32> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `touch -t [[CC]YY]MMDDhhmm[.ss]`; a two-digit year is 1969-2068, as POSIX says.
pub(crate) fn parse_stamp(text: &str) -> Option<i64> {
    let (main, second) = match text.split_once('.') {
        Some((main, ss)) if ss.len() == 2 => (main, number(ss)?),
        Some(_) => return None,
        None => (text, 0),
    };
    if !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match main.len() {
        8 => (current_year()?, main),
        10 => {
            let yy = number(&main[..2])? as i32;
            (if yy < 69 { 2000 + yy } else { 1900 + yy }, &main[2..])
        }
        12 => (number(&main[..4])? as i32, &main[4..]),
        _ => return None,
    };
    let field = |i: usize| number(&rest[i..i + 2]);
    local(year, field(0)?, field(2)?, (field(4)?, field(6)?, second))
}

/// `touch -d`: `@SECONDS`, `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` or with `T`.
pub(crate) fn parse_date(text: &str) -> Option<i64> {
    if let Some(seconds) = text.strip_prefix('@') {
        return seconds.parse().ok();
    }
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut ymd = date.split('-');
    let (year, month, day) = (ymd.next()?, ymd.next()?, ymd.next()?);
    if ymd.next().is_some() || year.len() != 4 {
        return None;
    }
    let hms = match time {
        None => (0, 0, 0),
        Some(time) => {
            let mut parts = time.split(':');
            let hour = number(parts.next()?)?;
            let minute = number(parts.next()?)?;
            let second = parts.next().map_or(Some(0), number)?;
            if parts.next().is_some() {
                return None;
            }
            (hour, minute, second)
        }
    };
    local(number(year)? as i32, number(month)?, number(day)?, hms)
}

/// The local time of `seconds` since the epoch, broken down (localtime_r).
pub(crate) fn local_tm(seconds: i64) -> Option<libc::tm> {
    // SAFETY: localtime_r writes only the struct it is given, which lives across the call.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let time: libc::time_t = seconds;
        (!libc::localtime_r(&time, &mut tm).is_null()).then_some(tm)
    }
}

fn current_year() -> Option<i32> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(local_tm(i64::try_from(now).ok()?)?.tm_year + 1900)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_and_dates_parse_as_touch_reads_them() {
        // Compared with each other, so that the machine's time zone does not matter.
        let day = parse_date("2001-09-09").expect("a date");
        assert_eq!(parse_date("2001-09-09 01:46:40"), Some(day + 6400));
        assert_eq!(parse_date("2001-09-09T01:46"), Some(day + 6360));
        assert_eq!(parse_stamp("200109090146.40"), Some(day + 6400));
        assert_eq!(parse_stamp("0109090146"), Some(day + 6360));
        assert_eq!(parse_date("@1000000000"), Some(1_000_000_000));
        assert_eq!(parse_date("2001-02-30"), None);
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(parse_stamp("2001090901"), parse_date("2020-01-09 09:01"));
        assert_eq!(parse_stamp("13010101"), None);
        assert_eq!(parse_stamp("12010101.5"), None);
    }
}
