//! Redis-style logging: `pid:role dd Mon yyyy hh:mm:ss.mmm level message`.
//!
//! Tools and Redis's own test suite read these lines (` PID: `, `Ready to accept
//! connections`), so the shape matches Redis's `serverLog`. The destination and verbosity come
//! from `logfile` and `loglevel`; writes are whole lines under a lock so threads never
//! interleave within a line.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Mutex;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    Debug,
    Verbose,
    Notice,
    Warning,
}

impl Level {
    pub fn parse(s: &str) -> Level {
        match s {
            "debug" => Level::Debug,
            "verbose" => Level::Verbose,
            "warning" => Level::Warning,
            _ => Level::Notice,
        }
    }

    fn mark(self) -> char {
        match self {
            Level::Debug => '.',
            Level::Verbose => '-',
            Level::Notice => '*',
            Level::Warning => '#',
        }
    }
}

struct Sink {
    file: String,
    level: Level,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Sets where and how much to log (from `logfile` and `loglevel`).
pub fn init(file: &str, level: &str) {
    if let Ok(mut s) = SINK.lock() {
        *s = Some(Sink {
            file: file.to_string(),
            level: Level::parse(level),
        });
    }
}

/// Logs a line at `level`.
pub fn log(level: Level, msg: &str) {
    let guard = match SINK.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let (file, min) = match &*guard {
        Some(s) => (s.file.as_str(), s.level),
        None => ("", Level::Notice),
    };
    if level < min {
        return;
    }
    let line = format!(
        "{}:M {} {} {}\n",
        std::process::id(),
        timestamp(crate::util::now_ms()),
        level.mark(),
        msg
    );
    write_raw(file, &line);
}

/// The logger's destination, copied out for a forked child (`ChildLog`).
pub fn child_log() -> ChildLog {
    let guard = match SINK.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    match &*guard {
        Some(s) => ChildLog {
            file: s.file.clone(),
            level: s.level,
        },
        None => ChildLog {
            file: String::new(),
            level: Level::Notice,
        },
    }
}

/// Logging for a forked child: no lock is taken (another thread of the parent may have held
/// the logger's or stdout's at the fork), lines go out with one `write(2)` each, marked `C`
/// as Redis marks its children's lines.
pub struct ChildLog {
    file: String,
    level: Level,
}

impl ChildLog {
    pub fn log(&self, level: Level, msg: &str) {
        if level < self.level {
            return;
        }
        let line = format!(
            "{}:C {} {} {}\n",
            std::process::id(),
            timestamp(crate::util::now_ms()),
            level.mark(),
            msg
        );
        if self.file.is_empty() {
            // SAFETY: writing a local buffer to standard output.
            unsafe {
                libc::write(1, line.as_ptr().cast(), line.len());
            }
        } else if let Ok(mut f) = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.file)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Writes text as is (the start-up banner).
pub fn raw(text: &str) {
    let guard = match SINK.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let file = guard.as_ref().map_or("", |s| s.file.as_str()).to_string();
    write_raw(&file, text);
}

fn write_raw(file: &str, text: &str) {
    if file.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    } else if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(file) {
        let _ = f.write_all(text.as_bytes());
    }
}

/// `21 Nov 2026 06:21:14.123` in UTC.
pub fn timestamp(ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86400) as i64);
    let rem = secs % 86400;
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        d,
        MONTHS[(m - 1) as usize % 12],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[macro_export]
macro_rules! log_notice { ($($a:tt)*) => { $crate::log::log($crate::log::Level::Notice, &format!($($a)*)) } }
#[macro_export]
macro_rules! log_warning { ($($a:tt)*) => { $crate::log::log($crate::log::Level::Warning, &format!($($a)*)) } }
#[macro_export]
macro_rules! log_verbose { ($($a:tt)*) => { $crate::log::log($crate::log::Level::Verbose, &format!($($a)*)) } }

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        assert_eq!(super::timestamp(0), "01 Jan 1970 00:00:00.000");
        assert_eq!(
            super::timestamp(1_795_242_074_123),
            "21 Nov 2026 06:21:14.123"
        );
    }
}
