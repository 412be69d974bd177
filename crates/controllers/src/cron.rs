//! Cron schedules as CronJobs use them: five fields (minute hour day-of-month month
//! day-of-week) with `*`, lists, ranges, steps and names, or the `@hourly`-style
//! macros; evaluated in a time zone.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    dom: Vec<bool>,
    months: Vec<bool>,
    dow: Vec<bool>,
    dom_any: bool,
    dow_any: bool,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn value(s: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u32 + offset);
    }
    s.parse()
        .map_err(|_| format!("failed to parse int from {s}"))
}

/// One field into a bitmap over `min..=max`; returns it and whether it was `*`.
fn field(
    spec: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_offset: u32,
) -> Result<(Vec<bool>, bool), String> {
    let mut bits = vec![false; max as usize + 1];
    let any = spec == "*" || spec == "?";
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .map_err(|_| format!("failed to parse int from {s}"))?,
            ),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        let (lo, hi) = match range {
            "*" | "?" => (min, max),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a, names, name_offset)?, value(b, names, name_offset)?),
                None => {
                    let v = value(r, names, name_offset)?;
                    (v, if part.contains('/') { max } else { v })
                }
            },
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("end of range ({hi}) above maximum ({max}): {part}"));
        }
        let mut v = lo;
        while v <= hi {
            bits[v as usize] = true;
            v += step;
        }
    }
    Ok((bits, any))
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s => s,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                f.len()
            ));
        }
        let (minutes, _) = field(f[0], 0, 59, &[], 0)?;
        let (hours, _) = field(f[1], 0, 23, &[], 0)?;
        let (dom, dom_any) = field(f[2], 1, 31, &[], 0)?;
        let (months, _) = field(f[3], 1, 12, MONTHS, 1)?;
        let (mut dow, dow_any) = field(f[4].replace('7', "0").as_str(), 0, 6, DAYS, 0)?;
        dow.truncate(7);
        Ok(Self {
            minutes,
            hours,
            dom,
            months,
            dow,
            dom_any,
            dow_any,
        })
    }

    fn matches(&self, t: DateTime) -> bool {
        let day_ok = {
            let d = self.dom[t.day() as usize];
            let w = self.dow[t.weekday().to_sunday_zero_offset() as usize];
            match (self.dom_any, self.dow_any) {
                (true, true) => true,
                (true, false) => w,
                (false, true) => d,
                (false, false) => d || w,
            }
        };
        self.minutes[t.minute() as usize]
            && self.hours[t.hour() as usize]
            && self.months[t.month() as usize]
            && day_ok
    }

    /// The latest scheduled time in (after, now], looking back at most `limit` minutes.
    pub fn last_between(
        &self,
        after: Timestamp,
        now: Timestamp,
        tz: &TimeZone,
        limit: usize,
    ) -> Option<Timestamp> {
        let mut t = now
            .to_zoned(tz.clone())
            .datetime()
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?;
        for _ in 0..limit {
            let ts = tz.to_timestamp(t).ok()?;
            if ts <= after {
                return None;
            }
            if self.matches(t) {
                return Some(ts);
            }
            t = t.checked_sub(1.minute()).ok()?;
        }
        None
    }

    /// The next scheduled time after `after`, looking ahead at most `limit` minutes.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone, limit: usize) -> Option<Timestamp> {
        let mut t = after
            .to_zoned(tz.clone())
            .datetime()
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?;
        for _ in 0..limit {
            t = t.checked_add(1.minute()).ok()?;
            if self.matches(t) {
                return tz.to_timestamp(t).ok();
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let tz = TimeZone::UTC;
        let s = Schedule::parse("*/15 9-17 * * mon-fri").unwrap();
        let t: Timestamp = "2024-01-01T10:07:30Z".parse().unwrap(); // a Monday
        assert_eq!(
            s.last_between(Timestamp::UNIX_EPOCH, t, &tz, 1000)
                .unwrap()
                .to_string(),
            "2024-01-01T10:00:00Z"
        );
        assert_eq!(
            s.next_after(t, &tz, 1000).unwrap().to_string(),
            "2024-01-01T10:15:00Z"
        );
        let h = Schedule::parse("@hourly").unwrap();
        assert_eq!(
            h.next_after(t, &tz, 1000).unwrap().to_string(),
            "2024-01-01T11:00:00Z"
        );
        assert!(Schedule::parse("* * *").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
        let every = Schedule::parse("* * * * *").unwrap();
        assert_eq!(
            every
                .last_between(t - 5.minutes(), t, &tz, 10)
                .unwrap()
                .to_string(),
            "2024-01-01T10:07:00Z"
        );
    }
}
