//! Time as the domain sees it: an instant in Unix milliseconds (UTC), passed in by the caller.

use std::fmt;

/// An instant, in milliseconds since the Unix epoch (UTC). Millisecond precision is what the
/// event envelope stores, so a domain value survives a round trip through the log unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// An instant from Unix milliseconds.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Unix milliseconds.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// The instant `millis` later (saturating).
    pub const fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// The instant `hours` later (saturating).
    pub const fn plus_hours(self, hours: i64) -> Self {
        self.plus_millis(hours.saturating_mul(3_600_000))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Iraq's offset from UTC: three hours, all year (no daylight saving since 2008). Reporting
/// periods (days, weeks, quarters) are days in Iraq, so a referral made at 01:00 on a Monday in
/// Erbil falls in that Monday's week, not in the Sunday before.
pub const IRAQ_OFFSET_MILLIS: i64 = 3 * 3_600_000;

const DAY_MILLIS: i64 = 86_400_000;

/// A calendar day in Iraq (proleptic Gregorian), for reporting periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Days since 1970-01-01.
    days: i64,
}

impl Date {
    /// The day in Iraq that `at` falls on.
    pub const fn of(at: Timestamp) -> Self {
        Self {
            days: (at.0 + IRAQ_OFFSET_MILLIS).div_euclid(DAY_MILLIS),
        }
    }

    /// The day `year`-`month`-`day`; refused when there is no such day.
    pub fn from_ymd(year: i64, month: u32, day: u32) -> Result<Self, crate::ValidationError> {
        let invalid = || crate::ValidationError::new("date", "is not a calendar day (YYYY-MM-DD)");
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) || !(1900..=9999).contains(&year)
        {
            return Err(invalid());
        }
        Ok(Self {
            days: days_from_civil(year, month, day),
        })
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Self, crate::ValidationError> {
        let invalid = || crate::ValidationError::new("date", "is not a calendar day (YYYY-MM-DD)");
        let mut parts = text.split('-');
        let (Some(y), Some(m), Some(d), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        if y.len() != 4 || m.len() != 2 || d.len() != 2 {
            return Err(invalid());
        }
        let number = |s: &str| s.parse::<u32>().map_err(|_| invalid());
        Self::from_ymd(i64::from(number(y)?), number(m)?, number(d)?)
    }

    /// Year, month (1–12) and day (1–31).
    pub const fn ymd(self) -> (i64, u32, u32) {
        civil_from_days(self.days)
    }

    /// The first instant of the day (00:00 in Iraq).
    pub const fn start(self) -> Timestamp {
        Timestamp(self.days * DAY_MILLIS - IRAQ_OFFSET_MILLIS)
    }

    /// The day `n` days later.
    pub const fn plus_days(self, n: i64) -> Self {
        Self { days: self.days + n }
    }

    /// The Monday of the ISO week the day is in.
    pub const fn week_start(self) -> Self {
        // 1970-01-01 was a Thursday: three days after a Monday.
        Self {
            days: self.days - (self.days + 3).rem_euclid(7),
        }
    }

    /// The quarter the day is in, e.g. `2026-Q4`.
    pub fn quarter(self) -> Quarter {
        let (year, month, _) = self.ymd();
        Quarter {
            year,
            number: (month - 1) / 3 + 1,
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// A calendar quarter in Iraq, written `2026-Q4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    year: i64,
    number: u32,
}

impl Quarter {
    /// Parses `YYYY-Qn`.
    pub fn parse(text: &str) -> Result<Self, crate::ValidationError> {
        let invalid = || crate::ValidationError::new("quarter", "is not a quarter (YYYY-Q1 to YYYY-Q4)");
        let (year, number) = text.split_once("-Q").ok_or_else(invalid)?;
        let year: i64 = year.parse().map_err(|_| invalid())?;
        let number: u32 = number.parse().map_err(|_| invalid())?;
        if !(1..=4).contains(&number) || !(1900..=9999).contains(&year) || text.len() != 7 {
            return Err(invalid());
        }
        Ok(Self { year, number })
    }

    /// Its first day.
    pub fn first_day(self) -> Date {
        Date {
            days: days_from_civil(self.year, (self.number - 1) * 3 + 1, 1),
        }
    }

    /// The first day of the next quarter.
    pub fn next_first_day(self) -> Date {
        if self.number == 4 {
            Date {
                days: days_from_civil(self.year + 1, 1, 1),
            }
        } else {
            Date {
                days: days_from_civil(self.year, self.number * 3 + 1, 1),
            }
        }
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-Q{}", self.year, self.number)
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's `days_from_civil`).
const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date — year, month (1–12), day (1–31) — of a count of days since 1970-01-01
/// (H. Hinnant's `civil_from_days`).
pub const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_weeks_and_quarters_are_counted_in_iraq_time() {
        // 2026-12-06 22:30 UTC is 01:30 on Monday 7 December in Baghdad.
        let at = Timestamp::from_unix_millis(1_796_596_200_000);
        let day = Date::of(at);
        assert_eq!(day.to_string(), "2026-12-07");
        assert_eq!(day.week_start().to_string(), "2026-12-07");
        assert_eq!(day.plus_days(-1).week_start().to_string(), "2026-11-30");
        assert_eq!(day.quarter().to_string(), "2026-Q4");
        assert_eq!(Date::of(day.start()), day);
        assert_eq!(Date::of(day.start().plus_millis(-1)), day.plus_days(-1));
        assert_eq!(
            Date::parse("2024-02-29").map(|d| d.to_string()),
            Ok("2024-02-29".to_owned())
        );
        for bad in ["2025-02-29", "2026-13-01", "26-01-01", "2026-1-01", "2026-01-01T00"] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
        let q = Quarter::parse("2026-Q4").expect("quarter");
        assert_eq!(q.first_day().to_string(), "2026-10-01");
        assert_eq!(q.next_first_day().to_string(), "2027-01-01");
        assert!(Quarter::parse("2026-Q5").is_err());
    }
}
