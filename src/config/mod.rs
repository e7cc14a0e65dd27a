//! Configuration. (Interface; the full implementation replaces the body.)
//!
//! `Config` is a typed snapshot. The engine reads it through `SharedConfig`, which holds the
//! current `Arc<Config>` and a generation counter bumped by every successful CONFIG SET, so a
//! shard re-reads its snapshot only when the generation changed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Which I/O backend to run shards on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoBackend {
    Auto,
    Uring,
    Epoll,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub port: u16,
    pub bind: Vec<String>,
    /// Shard threads; 0 = one per online CPU.
    pub shards: usize,
    pub io_backend: IoBackend,
    pub dir: String,
    pub databases: usize,
    pub requirepass: Option<Vec<u8>>,
    pub timeout_secs: u64,
    pub tcp_keepalive_secs: u64,
    pub maxclients: usize,
    pub hz: u32,
    pub loglevel: String,
    pub logfile: String,
    pub pidfile: String,
    pub daemonize: bool,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    /// The config file this server was started with, if any (for CONFIG REWRITE).
    pub config_file: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 6379,
            bind: vec!["*".to_string(), "-::*".to_string()],
            shards: 0,
            io_backend: IoBackend::Auto,
            dir: ".".to_string(),
            databases: 16,
            requirepass: None,
            timeout_secs: 0,
            tcp_keepalive_secs: 300,
            maxclients: 10000,
            hz: 10,
            loglevel: "notice".to_string(),
            logfile: String::new(),
            pidfile: String::new(),
            daemonize: false,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            config_file: None,
        }
    }
}

impl Config {
    /// Builds the config from the command line (`[config-file] [--directive value ...]`).
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut c = Config::default();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if let Some(name) = a.strip_prefix("--") {
                let v = args.get(i + 1).cloned().unwrap_or_default();
                match name {
                    "port" => c.port = v.parse().map_err(|_| "bad port".to_string())?,
                    "shards" => c.shards = v.parse().map_err(|_| "bad shards".to_string())?,
                    "io-backend" => {
                        c.io_backend = match v.as_str() {
                            "uring" => IoBackend::Uring,
                            "epoll" => IoBackend::Epoll,
                            _ => IoBackend::Auto,
                        }
                    }
                    _ => {}
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        Ok(c)
    }
}

/// The current config, shared by all shards.
pub struct SharedConfig {
    current: RwLock<Arc<Config>>,
    generation: AtomicU64,
}

impl SharedConfig {
    pub fn new(c: Config) -> Self {
        SharedConfig {
            current: RwLock::new(Arc::new(c)),
            generation: AtomicU64::new(1),
        }
    }

    pub fn load(&self) -> Arc<Config> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces the config (after a successful CONFIG SET).
    pub fn store(&self, c: Config) {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = Arc::new(c);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

impl Config {
    /// CONFIG GET (placeholder until the config module lands).
    pub fn get(&self, _patterns: &[&[u8]]) -> Vec<(String, String)> {
        Vec::new()
    }

    /// CONFIG SET (placeholder until the config module lands).
    pub fn set(&self, _pairs: &[(&[u8], &[u8])]) -> Result<Config, String> {
        Err("ERR CONFIG SET is not available yet".to_string())
    }

    /// CONFIG REWRITE (placeholder until the config module lands).
    pub fn rewrite(&self) -> Result<(), String> {
        Err("ERR The server is running without a config file".to_string())
    }
}
