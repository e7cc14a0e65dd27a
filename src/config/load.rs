//! Start-up configuration: `shardis-server [configfile|-] [--name value ...] [-]`.
//!
//! This follows Redis's `main()` and `loadServerConfig()` step for step, because scripts and
//! test suites depend on the corner cases:
//!
//! 1. `-v`/`--version` and `-h`/`--help` as the first argument short-circuit everything.
//! 2. A first argument not starting with `-` is the config file (made absolute, for CONFIG
//!    REWRITE); `-` as the first or last argument reads config from stdin.
//! 3. Every `--name` starts a new config line, following words are quoted with `sdscatrepr` and
//!    appended to it, so `--save 900 1`, `--replicaof host port` and `"--maxmemory 700mb"` all
//!    work; a `--name` right after another `--name` is taken as its value, except after `--save`
//!    and `--sentinel` (Redis 7.0.1's compatibility rules).
//! 4. File, stdin and options are concatenated (options after a newline) and parsed as one
//!    text, so line numbers in errors run on from the file into the options, exactly like
//!    Redis's `*** FATAL CONFIG FILE ERROR ***` report.
//!
//! `include` reads a file (or every file of a glob, sorted) in place, with its own line numbers.

use super::access::{self, Mode};
use super::directives::lookup;
use super::values::{lossy, repr, split_args, strerror, trim};
use super::{Config, FileDirective, REDIS_VERSION};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// How deep `include` may nest before the load fails (Redis would recurse until it crashes).
pub const INCLUDE_DEPTH_MAX: usize = 16;

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // Built once at start-up; boxing buys nothing.
pub enum CliAction {
    /// Start the server with this configuration.
    Run(Config),
    /// Print `version_text()` on stdout and exit 0.
    Version,
    /// Print `usage_text()` on stderr and exit 1.
    Help,
}

/// Parses the command line (`args` without the program name) and loads the config file, stdin
/// and options it names. `Err` is the text Redis would print before exiting with status 1.
pub fn parse_cli(args: &[String]) -> Result<CliAction, String> {
    parse_cli_with_stdin(args, &mut || {
        let mut text = Vec::new();
        std::io::stdin().read_to_end(&mut text).map(|_| text)
    })
}

/// `parse_cli` with stdin supplied by the caller (tests).
pub(crate) fn parse_cli_with_stdin(
    args: &[String],
    read_stdin: &mut dyn FnMut() -> std::io::Result<Vec<u8>>,
) -> Result<CliAction, String> {
    let Some(first) = args.first() else {
        return Ok(CliAction::Run(Config::default()));
    };
    match first.as_str() {
        "-v" | "--version" => return Ok(CliAction::Version),
        "-h" | "--help" => return Ok(CliAction::Help),
        _ => {}
    }
    let mut cfg = Config {
        sentinel_mode: args.iter().any(|a| a == "--sentinel"),
        ..Config::default()
    };
    let (config_file, options_start) = if first.starts_with('-') {
        (None, 0)
    } else {
        (Some(absolute_path(first)), 1)
    };
    let (options, from_stdin) = options_from_args(args.get(options_start..).unwrap_or_default());

    let mut text = Vec::new();
    if let Some(path) = &config_file {
        text = read_config_paths(Path::new(path))?;
    }
    if from_stdin {
        let input =
            read_stdin().map_err(|e| format!("Reading config from stdin: {}", strerror(&e)))?;
        text.extend_from_slice(&input);
    }
    text.push(b'\n');
    text.extend_from_slice(options.as_bytes());

    cfg.config_file = config_file;
    let mut loader = Loader {
        cfg,
        save_seen: false,
        depth: 0,
    };
    loader.load_text(&text)?;
    Ok(CliAction::Run(loader.cfg))
}

/// Builds the extra config lines from the options, like Redis's `main()`. Also tells whether
/// `-` asks for stdin (only as the first or the last argument).
pub(crate) fn options_from_args(args: &[String]) -> (String, bool) {
    let mut options = String::new();
    let mut from_stdin = false;
    let mut last_option_has_value = true;
    let last = args.len().saturating_sub(1);
    for (j, arg) in args.iter().enumerate() {
        if arg == "-" && (j == 0 || j == last) {
            from_stdin = true;
        } else if last_option_has_value && arg.starts_with("--") {
            if !options.is_empty() {
                options.push('\n');
            }
            options.push_str(arg.get(2..).unwrap_or_default());
            options.push(' ');
            let words = split_args(arg.as_bytes()).map_or(0, |w| w.len());
            if words != 1 {
                // Name and value in one argument: "--port 6380".
                last_option_has_value = true;
                continue;
            }
            last_option_has_value = false;
            let next_is_option = args.get(j + 1).is_some_and(|n| n.starts_with("--"));
            if arg.eq_ignore_ascii_case("--save") && (j == last || next_is_option) {
                // `--save` with nothing after it means `--save ""`.
                options.push_str("\"\"");
                last_option_has_value = true;
            } else if arg.eq_ignore_ascii_case("--sentinel") && next_is_option {
                last_option_has_value = true;
            }
        } else {
            options.push_str(&repr(arg.as_bytes()));
            options.push(' ');
            last_option_has_value = true;
        }
    }
    (options, from_stdin)
}

/// Redis's start-up report for a bad config, line information included when known. Printed
/// with `eprintln!` it reproduces Redis's stderr byte for byte.
pub(crate) fn fatal_error(line: Option<(usize, &str)>, message: &str) -> String {
    let mut report = format!("\n*** FATAL CONFIG FILE ERROR (Redis {REDIS_VERSION}) ***\n");
    if let Some((number, text)) = line {
        report.push_str(&format!(
            "Reading the configuration file, at line {number}\n"
        ));
        report.push_str(&format!(">>> '{text}'\n"));
    }
    report.push_str(message);
    report
}

/// The state of one load: the config being built and what Redis keeps in statics.
struct Loader {
    cfg: Config,
    /// Whether a `save` line was seen (the first one replaces the default rules).
    save_seen: bool,
    /// Current `include` nesting.
    depth: usize,
}

/// Why a line failed: a message to wrap with the line, or a finished report from an include.
enum LineError {
    Message(String),
    Report(String),
}

impl From<String> for LineError {
    fn from(message: String) -> Self {
        LineError::Message(message)
    }
}

impl From<&str> for LineError {
    fn from(message: &str) -> Self {
        LineError::Message(message.to_string())
    }
}

impl Loader {
    /// `loadServerConfigFromString`: every line of `text`, then the whole-config checks.
    fn load_text(&mut self, text: &[u8]) -> Result<(), String> {
        for (index, raw) in text.split(|&c| c == b'\n').enumerate() {
            let line = trim(raw, b" \t\r\n");
            if line.is_empty() || line.first() == Some(&b'#') {
                continue;
            }
            let shown = lossy(line);
            let result = match split_args(line) {
                None => Err(LineError::from("Unbalanced quotes in configuration line")),
                Some(argv) if argv.is_empty() => Ok(()),
                Some(mut argv) => {
                    if let Some(name) = argv.first_mut() {
                        name.make_ascii_lowercase();
                    }
                    self.load_line(&argv, index + 1, &shown)
                }
            };
            match result {
                Ok(()) => {}
                Err(LineError::Message(m)) => {
                    return Err(fatal_error(Some((index + 1, &shown)), &m));
                }
                Err(LineError::Report(report)) => return Err(report),
            }
        }
        self.check_whole_config()
    }

    fn load_line(
        &mut self,
        argv: &[Vec<u8>],
        line_number: usize,
        line: &str,
    ) -> Result<(), LineError> {
        let name = argv.first().map_or(&[][..], Vec::as_slice);
        let values = argv.get(1..).unwrap_or_default();
        if let Some((d, _)) = lookup(name) {
            if d.flags & super::directives::MULTI_ARG == 0 && values.len() != 1 {
                return Err("wrong number of arguments".into());
            }
            let args = access::file_args(d, values);
            let mode = Mode::File {
                save_seen: &mut self.save_seen,
            };
            return Ok(access::assign(&mut self.cfg, d, &args, mode)?);
        }
        let kept = FileDirective {
            args: argv.iter().map(|w| lossy(w)).collect(),
            line_number,
            line: line.to_string(),
        };
        let argc = argv.len();
        match name {
            // Deprecated directives Redis 7.0 still swallows.
            b"list-max-ziplist-entries" | b"list-max-ziplist-value" | b"lua-replicate-commands"
                if argc == 2 =>
            {
                Ok(())
            }
            b"include" if argc == 2 => {
                let path = values.first().map(|p| lossy(p)).unwrap_or_default();
                self.include(&path).map_err(LineError::Report)
            }
            b"rename-command" if argc == 3 => {
                self.cfg.rename_commands.push(kept);
                Ok(())
            }
            b"user" if argc >= 2 => {
                self.cfg.acl_users.push(kept);
                Ok(())
            }
            b"loadmodule" if argc >= 2 => {
                self.cfg.loadmodules.push(kept);
                Ok(())
            }
            _ if name.contains(&b'.') => {
                if argc < 2 {
                    return Err("Module config specified without value".into());
                }
                // A later value for the same module option replaces the earlier one.
                self.cfg
                    .module_configs
                    .retain(|m| m.args.first() != kept.args.first());
                self.cfg.module_configs.push(kept);
                Ok(())
            }
            b"sentinel" => {
                // A bare `sentinel` (from `--sentinel`) only selects the mode.
                if argc != 1 {
                    if !self.cfg.sentinel_mode {
                        return Err("sentinel directive while not in sentinel mode".into());
                    }
                    self.cfg.sentinel_directives.push(kept);
                }
                Ok(())
            }
            _ => Err("Bad directive or wrong number of arguments".into()),
        }
    }

    /// `include <path>`: loads the file (or each match of a glob) in place.
    fn include(&mut self, path: &str) -> Result<(), String> {
        if self.depth >= INCLUDE_DEPTH_MAX {
            return Err(format!(
                "Fatal error, can't open config file '{path}': too many levels of include"
            ));
        }
        let resolved = access::path_in_dir(&self.cfg, Path::new(path));
        let text = read_config_paths(&resolved)?;
        self.depth += 1;
        let result = self.load_text(&text);
        self.depth -= 1;
        result
    }

    /// The checks Redis runs after each config text.
    fn check_whole_config(&self) -> Result<(), String> {
        if !self.cfg.logfile.is_empty() {
            // Redis opens the log file once here, so a bad path fails at start-up.
            let path = access::path_in_dir(&self.cfg, Path::new(&self.cfg.logfile));
            let opened = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path);
            if let Err(e) = opened {
                let message = format!("Can't open the log file: {}", strerror(&e));
                return Err(fatal_error(None, &message));
            }
        }
        if self.cfg.cluster_enabled && self.cfg.replicaof.is_some() {
            return Err(fatal_error(
                None,
                "replicaof directive not allowed in cluster mode",
            ));
        }
        Ok(())
    }
}

/// Reads a config file, or all files matching it when it holds `*`, `?` or `[` (none is fine).
fn read_config_paths(path: &Path) -> Result<Vec<u8>, String> {
    let text = path.to_string_lossy();
    let paths = if text.contains(['*', '?', '[']) {
        expand_glob(path)
    } else {
        vec![path.into()]
    };
    let mut content = Vec::new();
    for p in paths {
        let bytes = std::fs::read(&p).map_err(|e| {
            let shown = p.to_string_lossy();
            format!(
                "Fatal error, can't open config file '{shown}': {}",
                strerror(&e)
            )
        })?;
        content.extend_from_slice(&bytes);
    }
    Ok(content)
}

/// A small `glob(3)`: wildcards in any path component, hidden names only matched by a pattern
/// starting with `.`, results sorted; unreadable directories match nothing.
fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let mut matches = vec![PathBuf::new()];
    for component in pattern.components() {
        let Component::Normal(part) = component else {
            matches.iter_mut().for_each(|m| m.push(component));
            continue;
        };
        let part = part.as_bytes();
        if !part.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
            matches
                .iter_mut()
                .for_each(|m| m.push(OsStr::from_bytes(part)));
            continue;
        }
        let mut next = Vec::new();
        for base in &matches {
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .filter(|n| {
                    let n = n.as_bytes();
                    (part.first() == Some(&b'.') || n.first() != Some(&b'.'))
                        && crate::util::glob_match(part, n, false)
                })
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        matches = next;
    }
    matches.retain(|m| m.exists());
    matches
}

/// Redis's `getAbsolutePath`: relative paths are taken from the current directory.
fn absolute_path(path: &str) -> String {
    let p = Path::new(path);
    if p.is_absolute() {
        return path.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(p).to_string_lossy().into_owned(),
        Err(_) => path.to_string(),
    }
}

/// The `-v` line. It keeps Redis's format so tools that parse `redis-server -v` (`v=7.0.15` is
/// the third word) keep working, and names shardis and its version at the end.
pub fn version_text() -> String {
    format!(
        "Redis server v={REDIS_VERSION} sha=00000000:0 malloc=mimalloc bits={} build={:x} \
         shardis={}",
        usize::BITS,
        build_id(),
        env!("CARGO_PKG_VERSION")
    )
}

/// A stable build id derived from the version (FNV-1a), in place of Redis's build hash.
fn build_id() -> u64 {
    let text = concat!("shardis-", env!("CARGO_PKG_VERSION"), "-redis-7.0.15");
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `-h` text, Redis's with this binary's name and the shardis options.
pub fn usage_text() -> String {
    let lines = [
        "Usage: ./shardis-server [/path/to/redis.conf] [options] [-]",
        "       ./shardis-server - (read config from stdin)",
        "       ./shardis-server -v or --version",
        "       ./shardis-server -h or --help",
        "",
        "Examples:",
        "       ./shardis-server (run the server with default conf)",
        "       echo 'maxmemory 128mb' | ./shardis-server -",
        "       ./shardis-server /etc/redis/6379.conf",
        "       ./shardis-server --port 7777",
        "       ./shardis-server --port 7777 --replicaof 127.0.0.1 8888",
        "       ./shardis-server /etc/myredis.conf --loglevel verbose -",
        "       ./shardis-server /etc/myredis.conf --loglevel verbose",
        "       ./shardis-server --shards 4 --io-backend epoll",
        "",
        "Sentinel mode:",
        "       ./shardis-server /etc/sentinel.conf --sentinel",
    ];
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn options(args: &[&str]) -> String {
        options_from_args(&strings(args)).0
    }

    #[test]
    fn options_are_built_like_redis_main() {
        assert_eq!(options(&["--port", "6380"]), "port \"6380\" ");
        assert_eq!(options(&["--save", "900", "1"]), "save \"900\" \"1\" ");
        assert_eq!(
            options(&["--maxmemory 700mb", "--loglevel", "x"]),
            "maxmemory 700mb \nloglevel \"x\" "
        );
        assert_eq!(
            options(&["--port", "--loglevel", "verbose"]),
            "port \"--loglevel\" \"verbose\" "
        );
        assert_eq!(
            options(&["--save", "--loglevel", "v"]),
            "save \"\"\nloglevel \"v\" "
        );
        assert_eq!(
            options(&["--loglevel", "v", "--save"]),
            "loglevel \"v\" \nsave \"\""
        );
        assert_eq!(options(&["--save", ""]), "save \"\" ");
        assert_eq!(
            options(&["--sentinel", "--port", "1"]),
            "sentinel \nport \"1\" "
        );
        assert_eq!(
            options(&["loglevel", "verbose"]),
            "\"loglevel\" \"verbose\" "
        );
        assert_eq!(
            options_from_args(&strings(&["-", "--port", "1"])),
            ("port \"1\" ".into(), true)
        );
        assert_eq!(
            options_from_args(&strings(&["--port", "1", "-"])),
            ("port \"1\" ".into(), true)
        );
        assert_eq!(options(&["--port", "-", "1"]), "port \"-\" \"1\" ");
    }

    #[test]
    fn version_and_help() {
        let v = version_text();
        assert!(v.starts_with("Redis server v=7.0.15 sha=00000000:0 malloc=mimalloc bits="));
        assert_eq!(v.split(' ').nth(2), Some("v=7.0.15"));
        assert!(usage_text().contains("--shards"));
    }

    #[test]
    fn fatal_report_layout() {
        let report = fatal_error(Some((2, "port \"abc\"")), "argument couldn't be parsed");
        assert_eq!(
            report,
            "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, \
             at line 2\n>>> 'port \"abc\"'\nargument couldn't be parsed"
        );
    }
}
