//! Host checks: `shardis-server --check-system` and the warnings logged at start-up.
//!
//! The first checks are Redis 7.0's own (`redis-server --check-system`, syscheck.c), printed
//! the same way (`[name]...OK`, `...skipped`, `...WARNING:` then the text) with Redis's texts;
//! the others are what a shard-per-core io_uring server adds: the listen backlog against
//! `net.core.somaxconn` and `tcp_max_syn_backlog`, the locked-memory limit io_uring rings are
//! charged to on older kernels, whether io_uring is allowed at all, the CPU frequency governor,
//! NUMA, irqbalance, and the open-files limit against `maxclients`. Each warning says what to
//! change; `tuning/README.md` explains why.
//!
//! Every check reads files under /proc and /sys (paths injectable through `Host` so the tests
//! do not depend on the machine they run on).

use crate::config::Config;
use std::path::{Path, PathBuf};

/// A check's outcome, as Redis's `check_fn` returns it (1, 0, -1).
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Ok,
    Skipped,
    Warning(String),
}

/// Where the host's files are (`/` normally; a temp dir in tests).
pub struct Host {
    pub root: PathBuf,
}

impl Host {
    pub fn real() -> Host {
        Host { root: "/".into() }
    }

    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(path.trim_start_matches('/'))).ok()
    }

    fn read_num(&self, path: &str) -> Option<i64> {
        self.read(path)?.trim().parse().ok()
    }

    fn exists(&self, path: &str) -> bool {
        Path::new(&self.root.join(path.trim_start_matches('/'))).exists()
    }
}

pub const OVERCOMMIT_TEXT: &str = "Memory overcommit must be enabled! Without it, a background save or replication may fail under low memory condition. To fix this issue add 'vm.overcommit_memory = 1' to /etc/sysctl.conf and then reboot or run the command 'sysctl vm.overcommit_memory=1' for this to take effect.";

pub const THP_TEXT: &str = "You have Transparent Huge Pages (THP) support enabled in your kernel. This will create latency and memory usage issues with Redis. To fix this issue run the command 'echo madvise > /sys/kernel/mm/transparent_hugepage/enabled' as root, and add it to your /etc/rc.local in order to retain the setting after a reboot. Redis must be restarted after THP is disabled (set to 'madvise' or 'never').";

/// `checkOvercommit`.
pub fn overcommit(h: &Host) -> Outcome {
    match h.read_num("/proc/sys/vm/overcommit_memory") {
        None => Outcome::Skipped,
        Some(1) => Outcome::Ok,
        Some(_) => Outcome::Warning(OVERCOMMIT_TEXT.into()),
    }
}

/// `checkTHPEnabled`.
pub fn thp(h: &Host) -> Outcome {
    match h.read("/sys/kernel/mm/transparent_hugepage/enabled") {
        None => Outcome::Skipped,
        Some(s) if s.contains("[always]") => Outcome::Warning(THP_TEXT.into()),
        Some(_) => Outcome::Ok,
    }
}

/// `checkXenClocksource`.
pub fn xen_clocksource(h: &Host) -> Outcome {
    match h.read("/sys/devices/system/clocksource/clocksource0/current_clocksource") {
        None => Outcome::Skipped,
        Some(s) if s.trim() == "xen" => Outcome::Warning(
            "Your system is configured to use the 'xen' clocksource which might lead to degraded performance. Check the result of the [slow-clocksource] system check: run 'redis-server --check-system' to check if the system's clocksource isn't degrading performance.".into(),
        ),
        Some(_) => Outcome::Ok,
    }
}

/// Redis's start-up text when the listen backlog exceeds somaxconn.
pub fn somaxconn_text(backlog: u32, somaxconn: i64) -> String {
    format!(
        "WARNING: The TCP backlog setting of {} cannot be enforced because /proc/sys/net/core/somaxconn is set to the lower value of {}.",
        backlog, somaxconn
    )
}

pub fn somaxconn(h: &Host, cfg: &Config) -> Outcome {
    match h.read_num("/proc/sys/net/core/somaxconn") {
        None => Outcome::Skipped,
        Some(v) if v > 0 && v < cfg.tcp_backlog as i64 => Outcome::Warning(
            somaxconn_text(cfg.tcp_backlog, v)
                + " Raise it: 'sysctl -w net.core.somaxconn=65535' (see tuning/sysctl.conf).",
        ),
        Some(_) => Outcome::Ok,
    }
}

pub fn syn_backlog(h: &Host, cfg: &Config) -> Outcome {
    match h.read_num("/proc/sys/net/ipv4/tcp_max_syn_backlog") {
        None => Outcome::Skipped,
        Some(v) if v < cfg.tcp_backlog as i64 => Outcome::Warning(format!(
            "net.ipv4.tcp_max_syn_backlog is {} (below tcp-backlog {}): bursts of new connections will see SYNs dropped. Run 'sysctl -w net.ipv4.tcp_max_syn_backlog=65535'.",
            v, cfg.tcp_backlog
        )),
        Some(_) => Outcome::Ok,
    }
}

/// Kernels before 5.12 charge io_uring rings and registered buffers to RLIMIT_MEMLOCK; a
/// shard's ring plus its provided-buffer ring needs a few MB.
pub const MEMLOCK_BYTES_MIN: u64 = 64 << 20;

pub fn memlock(h: &Host) -> Outcome {
    let release = h.read("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if (major, minor) >= (5, 12) {
        // Accounted to the memory cgroup instead since 5.12.
        return Outcome::Ok;
    }
    let Ok((soft, _)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK)
    else {
        return Outcome::Skipped;
    };
    if soft != libc::RLIM_INFINITY && soft < MEMLOCK_BYTES_MIN {
        return Outcome::Warning(format!(
            "The locked-memory limit is {} KB. On kernels before 5.12 io_uring rings are charged to it and ring setup fails with ENOMEM, falling back to epoll. Set 'LimitMEMLOCK=infinity' in the systemd unit (tuning/shardis.service) or 'memlock unlimited' in /etc/security/limits.conf.",
            soft / 1024
        ));
    }
    Outcome::Ok
}

pub fn io_uring_allowed(h: &Host) -> Outcome {
    match h.read_num("/proc/sys/kernel/io_uring_disabled") {
        None => Outcome::Skipped,
        Some(0) => Outcome::Ok,
        Some(v) => Outcome::Warning(format!(
            "kernel.io_uring_disabled is {}: shards will run on the epoll backend. Run 'sysctl -w kernel.io_uring_disabled=0' for io_uring.",
            v
        )),
    }
}

pub fn governor(h: &Host) -> Outcome {
    let mut seen = false;
    let mut slow = Vec::new();
    for cpu in 0..1024 {
        let p = format!(
            "/sys/devices/system/cpu/cpu{}/cpufreq/scaling_governor",
            cpu
        );
        let Some(g) = h.read(&p) else {
            if !h.exists(&format!("/sys/devices/system/cpu/cpu{}", cpu)) {
                break;
            }
            continue;
        };
        seen = true;
        if g.trim() != "performance" {
            slow.push(format!("cpu{}={}", cpu, g.trim()));
        }
    }
    match (seen, slow.is_empty()) {
        (false, _) => Outcome::Skipped,
        (true, true) => Outcome::Ok,
        (true, false) => Outcome::Warning(format!(
            "CPU frequency governor is not 'performance' ({}): wake-up latency and throughput suffer while cores ramp up. Run 'cpupower frequency-set -g performance'.",
            slow.join(" ")
        )),
    }
}

pub fn numa(h: &Host) -> Outcome {
    let Some(online) = h.read("/sys/devices/system/node/online") else {
        return Outcome::Skipped;
    };
    let online = online.trim();
    if online == "0" {
        return Outcome::Ok;
    }
    Outcome::Warning(format!(
        "This host has several NUMA nodes ({}). Run one shardis per node, bound with 'numactl --cpunodebind=N --membind=N' and '--shards' = that node's cores, with the NIC's IRQs on the same node (tuning/README.md).",
        online
    ))
}

pub fn irqbalance(h: &Host) -> Outcome {
    let Ok(dir) = std::fs::read_dir(h.root.join("proc")) else {
        return Outcome::Skipped;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == "irqbalance" {
            return Outcome::Warning(
                "irqbalance is running: it moves NIC interrupts onto the CPUs shards are pinned to. Stop it and pin the NIC queues' IRQs to the housekeeping CPUs (tuning/irq-affinity.sh).".into(),
            );
        }
    }
    Outcome::Ok
}

pub fn open_files(_h: &Host, cfg: &Config) -> Outcome {
    let Ok((soft, _)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    else {
        return Outcome::Skipped;
    };
    let want = cfg.maxclients as u64 + 32;
    if soft != libc::RLIM_INFINITY && soft < want {
        return Outcome::Warning(format!(
            "The open-files limit is {}, below maxclients {} + 32 reserved: set 'LimitNOFILE=1048576' in the systemd unit or raise 'ulimit -n'.",
            soft, cfg.maxclients
        ));
    }
    Outcome::Ok
}

/// All checks with their names, Redis's first.
pub fn all(h: &Host, cfg: &Config) -> Vec<(&'static str, Outcome)> {
    vec![
        ("xen-clocksource", xen_clocksource(h)),
        ("overcommit", overcommit(h)),
        ("THP", thp(h)),
        ("somaxconn", somaxconn(h, cfg)),
        ("tcp-max-syn-backlog", syn_backlog(h, cfg)),
        ("memlock", memlock(h)),
        ("io-uring", io_uring_allowed(h)),
        ("open-files", open_files(h, cfg)),
        ("cpu-governor", governor(h)),
        ("numa", numa(h)),
        ("irqbalance", irqbalance(h)),
    ]
}

/// `shardis-server --check-system`: prints each check as Redis does; 0 when all pass.
pub fn run_cli() -> i32 {
    let cfg = Config::default();
    let mut ok = true;
    for (name, outcome) in all(&Host::real(), &cfg) {
        print!("[{}]...", name);
        match outcome {
            Outcome::Ok => println!("OK"),
            Outcome::Skipped => println!("skipped"),
            Outcome::Warning(text) => {
                println!("WARNING:");
                println!("{}", text);
                ok = false;
            }
        }
    }
    if ok {
        0
    } else {
        1
    }
}

/// The start-up warnings Redis logs (`linuxMemoryWarnings`, `checkTcpBacklogSettings`): the
/// overcommit policy, THP (first turned off for this process when `disable-thp` is set, as
/// Redis does, and only reported if that fails) and the somaxconn limit.
pub fn startup_warnings(cfg: &Config) -> Vec<String> {
    let h = Host::real();
    let mut v = Vec::new();
    if let Outcome::Warning(t) = overcommit(&h) {
        v.push(format!("WARNING {}", t));
    }
    if let Outcome::Warning(t) = thp(&h) {
        // SAFETY: prctl with integer arguments only.
        let disabled =
            cfg.disable_thp && unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } == 0;
        if !disabled {
            v.push(format!("WARNING {}", t));
        }
    }
    if let Some(s) = h.read_num("/proc/sys/net/core/somaxconn") {
        if s > 0 && s < cfg.tcp_backlog as i64 {
            v.push(somaxconn_text(cfg.tcp_backlog, s));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(files: &[(&str, &str)]) -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let path = dir.path().join(p.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let h = Host {
            root: dir.path().to_path_buf(),
        };
        (dir, h)
    }

    #[test]
    fn redis_checks_read_the_kernel_settings() {
        let (_d, h) = host(&[
            ("/proc/sys/vm/overcommit_memory", "0\n"),
            (
                "/sys/kernel/mm/transparent_hugepage/enabled",
                "[always] madvise never\n",
            ),
        ]);
        assert_eq!(overcommit(&h), Outcome::Warning(OVERCOMMIT_TEXT.into()));
        assert_eq!(thp(&h), Outcome::Warning(THP_TEXT.into()));
        assert_eq!(xen_clocksource(&h), Outcome::Skipped);
        let (_d, h) = host(&[
            ("/proc/sys/vm/overcommit_memory", "1\n"),
            (
                "/sys/kernel/mm/transparent_hugepage/enabled",
                "always [madvise] never\n",
            ),
        ]);
        assert_eq!(overcommit(&h), Outcome::Ok);
        assert_eq!(thp(&h), Outcome::Ok);
    }

    #[test]
    fn backlog_checks_compare_with_tcp_backlog() {
        let cfg = Config::default();
        let (_d, h) = host(&[
            ("/proc/sys/net/core/somaxconn", "128\n"),
            ("/proc/sys/net/ipv4/tcp_max_syn_backlog", "4096\n"),
        ]);
        match somaxconn(&h, &cfg) {
            Outcome::Warning(t) => assert!(t.starts_with(
                "WARNING: The TCP backlog setting of 511 cannot be enforced because /proc/sys/net/core/somaxconn is set to the lower value of 128."
            )),
            o => panic!("{:?}", o),
        }
        assert_eq!(syn_backlog(&h, &cfg), Outcome::Ok);
    }

    #[test]
    fn governor_and_numa() {
        let (_d, h) = host(&[
            (
                "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
                "performance\n",
            ),
            (
                "/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor",
                "powersave\n",
            ),
            ("/sys/devices/system/node/online", "0-1\n"),
        ]);
        match governor(&h) {
            Outcome::Warning(t) => assert!(t.contains("cpu1=powersave") && !t.contains("cpu0")),
            o => panic!("{:?}", o),
        }
        assert!(matches!(numa(&h), Outcome::Warning(_)));
    }
}
