//! The latency monitor: per event class ("command", "fast-command", "expire-cycle"...), the
//! last 160 samples (one per second at most, keeping the second's maximum) and the all-time
//! maximum; and the reports built from them (LATENCY DOCTOR's text, LATENCY GRAPH's ASCII
//! sparkline), with Redis 7.0's texts (latency.c, sparkline.c).

use std::collections::BTreeMap;

/// `LATENCY_TS_LEN`.
pub const SAMPLES_MAX: usize = 160;
/// `LATENCY_GRAPH_COLS`.
const GRAPH_COLUMNS: usize = 80;

#[derive(Clone, Copy, Default)]
pub struct Sample {
    pub time_secs: u64,
    pub ms: u64,
}

pub struct Series {
    pub samples: [Sample; SAMPLES_MAX],
    /// Where the next sample goes.
    pub idx: usize,
    pub max_ms: u64,
}

impl Series {
    fn new() -> Series {
        Series {
            samples: [Sample::default(); SAMPLES_MAX],
            idx: 0,
            max_ms: 0,
        }
    }

    /// Samples oldest first.
    pub fn in_order(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..SAMPLES_MAX)
            .map(move |j| self.samples[(self.idx + j) % SAMPLES_MAX])
            .filter(|s| s.time_secs != 0)
    }

    pub fn latest(&self) -> Sample {
        self.samples[(self.idx + SAMPLES_MAX - 1) % SAMPLES_MAX]
    }
}

#[derive(Default)]
pub struct Events {
    /// Ordered by name so replies are stable. Each series is boxed: a B-tree node holds
    /// eleven values inline, and unboxed ones would make the first event recorded cost 28
    /// KiB at once (a jump in `used_memory` that tight maxmemory limits notice).
    pub series: BTreeMap<&'static str, Box<Series>>,
}

impl Events {
    /// `latencyAddSample`.
    pub fn add(&mut self, event: &'static str, now_secs: u64, ms: u64) {
        let ts = self
            .series
            .entry(event)
            .or_insert_with(|| Box::new(Series::new()));
        ts.max_ms = ts.max_ms.max(ms);
        let prev = (ts.idx + SAMPLES_MAX - 1) % SAMPLES_MAX;
        if ts.samples[prev].time_secs == now_secs {
            ts.samples[prev].ms = ts.samples[prev].ms.max(ms);
            return;
        }
        ts.samples[ts.idx] = Sample {
            time_secs: now_secs,
            ms,
        };
        ts.idx = (ts.idx + 1) % SAMPLES_MAX;
    }

    /// Resets one event (case-insensitively) or all; returns how many were reset.
    pub fn reset(&mut self, event: Option<&[u8]>) -> usize {
        let before = self.series.len();
        match event {
            None => self.series.clear(),
            Some(e) => self
                .series
                .retain(|k, _| !k.as_bytes().eq_ignore_ascii_case(e)),
        }
        before - self.series.len()
    }

    pub fn get(&self, event: &[u8]) -> Option<(&'static str, &Series)> {
        self.series
            .iter()
            .find(|(k, _)| k.as_bytes() == event)
            .map(|(k, v)| (*k, &**v))
    }
}

/// `analyzeLatencyForEvent`'s figures.
struct Stats {
    samples: u64,
    avg: u64,
    mad: u64,
    period: u64,
}

fn analyze(ts: &Series, now_secs: u64) -> Stats {
    let (mut samples, mut sum, mut oldest) = (0u64, 0u64, 0u64);
    for s in ts.in_order() {
        samples += 1;
        sum += s.ms;
        if oldest == 0 || s.time_secs < oldest {
            oldest = s.time_secs;
        }
    }
    let avg = sum.checked_div(samples).unwrap_or(0);
    let period = if samples > 0 {
        now_secs.saturating_sub(oldest).max(1)
    } else {
        0
    };
    let dev: u64 = ts.in_order().map(|s| avg.abs_diff(s.ms)).sum();
    let mad = dev.checked_div(samples).unwrap_or(0);
    Stats {
        samples,
        avg,
        mad,
        period,
    }
}

/// What DOCTOR needs to know of the server besides the events.
pub struct DoctorContext {
    pub now_secs: u64,
    pub monitor_threshold_ms: u64,
    pub slowlog_slower_than_us: i64,
    pub hz: u64,
    pub thp_anon_bytes: u64,
}

/// `createLatencyReport`.
pub fn doctor(ev: &Events, cx: &DoctorContext) -> String {
    if ev.series.is_empty() && cx.monitor_threshold_ms == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_string();
    }
    let mut r = String::new();
    let mut advices = 0;
    let (mut slowlog_enable, mut slowlog_tuning, mut slowlog_inspect) = (false, false, false);
    let (mut scheduler, mut hz, mut large_objects) = (false, false, false);
    for (n, (event, ts)) in ev.series.iter().enumerate() {
        if n == 0 {
            r.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let st = analyze(ts, cx.now_secs);
        r.push_str(&format!(
            "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.",
            n + 1,
            event,
            st.samples,
            st.avg,
            st.mad,
            st.period as f64 / st.samples.max(1) as f64,
            ts.max_ms
        ));
        match *event {
            "command" => {
                if cx.slowlog_slower_than_us < 0 {
                    slowlog_enable = true;
                    advices += 1;
                } else if (cx.slowlog_slower_than_us / 1000) as u64 > cx.monitor_threshold_ms {
                    slowlog_tuning = true;
                    advices += 1;
                }
                slowlog_inspect = true;
                large_objects = true;
                advices += 2;
            }
            "fast-command" => {
                scheduler = true;
                advices += 1;
            }
            "expire-cycle" => {
                hz = true;
                large_objects = true;
                advices += 2;
            }
            _ => {}
        }
        r.push('\n');
    }
    let thp = cx.thp_anon_bytes > 0;
    if thp {
        advices += 1;
    }
    let events = ev.series.len();
    if events == 0 && advices == 0 {
        r.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
        return r;
    }
    if events > 0 && advices == 0 {
        r.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
        return r;
    }
    r.push_str("\nI have a few advices for you:\n\n");
    if slowlog_enable {
        r.push_str(&format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n", cx.monitor_threshold_ms * 1000));
    }
    if slowlog_tuning {
        r.push_str(&format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.\n", cx.monitor_threshold_ms * 1000));
    }
    if slowlog_inspect {
        r.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
    }
    if scheduler {
        r.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
    }
    if hz && cx.hz < 100 {
        r.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
    }
    if large_objects {
        r.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    if thp {
        r.push_str("- I detected a non zero amount of anonymous huge pages used by your process. This creates very serious latency events in different conditions, especially when Redis is persisting on disk. To disable THP support use the command 'echo never > /sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it into /etc/rc.local so that the command will be executed again after a reboot. Note that even if you have already disabled THP, you still need to restart the Redis process to get rid of the huge pages already created.\n");
    }
    r
}

/// `latencyCommandGenSparkeline`: the header, a rule, and the sparkline (4 rows, filled)
/// with each sample's age as a vertical label.
pub fn graph(event: &str, ts: &Series, now_secs: u64) -> String {
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for s in ts.in_order() {
        let age = now_secs.saturating_sub(s.time_secs);
        labels.push(if age < 60 {
            format!("{}s", age)
        } else if age < 3600 {
            format!("{}m", age / 60)
        } else if age < 86400 {
            format!("{}h", age / 3600)
        } else {
            format!("{}d", age / 86400)
        });
        values.push(s.ms as f64);
    }
    let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = values.iter().cloned().fold(0.0, f64::max);
    let lo = if values.is_empty() { 0.0 } else { lo };
    let mut g = format!(
        "{} - high {} ms, low {} ms (all time high {} ms)\n{}\n",
        event,
        hi as u64,
        lo as u64,
        ts.max_ms,
        "-".repeat(GRAPH_COLUMNS)
    );
    let mut j = 0;
    while j < values.len() {
        let len = (values.len() - j).min(GRAPH_COLUMNS);
        if j != 0 {
            g.push('\n');
        }
        render_range(&mut g, &values, &labels, j, len, spark_min_max(&values));
        j += GRAPH_COLUMNS;
    }
    g
}

/// The sequence's min and max as sparkline.c tracks them (its `else if` means a sample both
/// below the minimum and above the maximum cannot happen, so this equals the true range).
fn spark_min_max(values: &[f64]) -> (f64, f64) {
    let mut it = values.iter();
    let Some(&first) = it.next() else {
        return (0.0, 0.0);
    };
    let (mut lo, mut hi) = (first, first);
    for &v in it {
        if v < lo {
            lo = v;
        } else if v > hi {
            hi = v;
        }
    }
    (lo, hi)
}

/// `sparklineRenderRange` with `SPARKLINE_FILL`, 4 rows, labels one row below.
fn render_range(
    out: &mut String,
    values: &[f64],
    labels: &[String],
    offset: usize,
    len: usize,
    (min, max): (f64, f64),
) {
    const ROWS: i64 = 4;
    const FILL: &[u8] = b"_o#";
    let charset_len = FILL.len() as i64;
    let mut relmax = max - min;
    if relmax == 0.0 {
        relmax = 1.0;
    }
    let steps = charset_len * ROWS;
    let mut row: i64 = 0;
    loop {
        let mut more = false;
        let mut chars = vec![b' '; len];
        for j in 0..len {
            let relval = values[j + offset] - min;
            let step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
            let step = step.clamp(0, steps - 1);
            if row < ROWS {
                let idx = step - (ROWS - row - 1) * charset_len;
                more = true;
                if (0..charset_len).contains(&idx) {
                    chars[j] = FILL[idx as usize];
                } else if idx >= charset_len {
                    chars[j] = b'|';
                }
            } else {
                // One blank row between the graph and the labels.
                if row - ROWS < 1 {
                    more = true;
                    break;
                }
                let label = labels[j + offset].as_bytes();
                let at = (row - ROWS - 1) as usize;
                if label.len() > at {
                    more = true;
                    chars[j] = label[at];
                }
            }
        }
        if !more {
            break;
        }
        row += 1;
        out.push_str(&String::from_utf8_lossy(&chars));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_keeps_the_maximum() {
        let mut ev = Events::default();
        ev.add("command", 100, 5);
        ev.add("command", 100, 9);
        ev.add("command", 100, 3);
        ev.add("command", 101, 4);
        let (_, ts) = ev.get(b"command").unwrap();
        let v: Vec<(u64, u64)> = ts.in_order().map(|s| (s.time_secs, s.ms)).collect();
        assert_eq!(v, vec![(100, 9), (101, 4)]);
        assert_eq!(ts.max_ms, 9);
        assert_eq!(ev.reset(Some(b"COMMAND")), 1);
        assert_eq!(ev.reset(None), 0);
    }

    #[test]
    fn ring_keeps_the_last_160() {
        let mut ev = Events::default();
        for t in 1..=200 {
            ev.add("x", t, t);
        }
        let (_, ts) = ev.get(b"x").unwrap();
        let v: Vec<u64> = ts.in_order().map(|s| s.time_secs).collect();
        assert_eq!(v.len(), SAMPLES_MAX);
        assert_eq!(v[0], 41);
        assert_eq!(ts.latest().ms, 200);
    }

    #[test]
    fn graph_has_header_rule_rows_and_labels() {
        let mut ev = Events::default();
        ev.add("command", 100, 300);
        ev.add("command", 101, 500);
        let (_, ts) = ev.get(b"command").unwrap();
        let g = graph("command", ts, 103);
        let lines: Vec<&str> = g.lines().collect();
        assert_eq!(
            lines[0],
            "command - high 500 ms, low 300 ms (all time high 500 ms)"
        );
        assert_eq!(lines[1], "-".repeat(80));
        // 4 graph rows, a blank row, then the labels "3s" and "2s" written downwards.
        assert_eq!(lines[2..6], [" #", " |", " |", "_|"]);
        assert_eq!(lines[6], "  ");
        assert_eq!(lines[7], "32");
        assert_eq!(lines[8], "ss");
    }
}
