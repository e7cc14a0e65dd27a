//! Pub/sub: channels, patterns and shard channels, across shard threads; and keyspace
//! notifications, which are messages published by the server itself.
//!
//! The subscription registry is global (`Server::pubsub`, read-mostly behind a lock): who
//! listens where is independent of the keyspace partition. Publishing looks up the receivers
//! and hands one `Delivery` per receiving connection to the publisher's shard loop, which writes
//! it straight into a local connection's output or sends it to the connection's home shard over
//! the mesh. The home shard encodes it for the connection's protocol (RESP2 array or RESP3
//! push) at delivery time. Messages from one publisher travel through one FIFO queue per
//! destination shard, so their order is preserved for every subscriber.

use crate::protocol::Out;
use crate::shard::mesh::ConnRef;
use bytes::Bytes;
use hashbrown::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// Which namespace a subscription lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

/// A message on its way to one subscriber.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub to: ConnRef,
    /// The pattern that matched, for pattern subscriptions.
    pub pattern: Option<Bytes>,
    pub channel: Bytes,
    pub message: Bytes,
    pub sharded: bool,
}

#[derive(Default)]
pub struct Registry {
    channels: HashMap<Bytes, Vec<ConnRef>>,
    patterns: HashMap<Bytes, Vec<ConnRef>>,
    shard_channels: HashMap<Bytes, Vec<ConnRef>>,
}

impl Registry {
    fn map(&mut self, kind: Kind) -> &mut HashMap<Bytes, Vec<ConnRef>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        }
    }

    /// Calls `f` for every subscription (ACL revocations look for forbidden ones).
    pub fn each(&self, mut f: impl FnMut(Kind, &Bytes, &ConnRef)) {
        for (kind, map) in [
            (Kind::Channel, &self.channels),
            (Kind::Pattern, &self.patterns),
            (Kind::Shard, &self.shard_channels),
        ] {
            for (name, conns) in map {
                for c in conns {
                    f(kind, name, c);
                }
            }
        }
    }

    pub fn subscribe(&mut self, kind: Kind, name: &Bytes, conn: ConnRef) {
        let v = self.map(kind).entry(name.clone()).or_default();
        if !v.contains(&conn) {
            v.push(conn);
        }
    }

    pub fn unsubscribe(&mut self, kind: Kind, name: &[u8], conn: ConnRef) {
        let map = self.map(kind);
        if let Some(v) = map.get_mut(name) {
            v.retain(|c| *c != conn);
            if v.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Every connection a message on `channel` reaches.
    pub fn receivers(&self, channel: &Bytes, message: &Bytes, sharded: bool) -> Vec<Delivery> {
        let mut out = Vec::new();
        let direct = if sharded {
            &self.shard_channels
        } else {
            &self.channels
        };
        if let Some(v) = direct.get(&channel[..]) {
            for &to in v {
                out.push(Delivery {
                    to,
                    pattern: None,
                    channel: channel.clone(),
                    message: message.clone(),
                    sharded,
                });
            }
        }
        if !sharded {
            for (pat, v) in &self.patterns {
                if crate::util::glob_match(pat, channel, false) {
                    for &to in v {
                        out.push(Delivery {
                            to,
                            pattern: Some(pat.clone()),
                            channel: channel.clone(),
                            message: message.clone(),
                            sharded: false,
                        });
                    }
                }
            }
        }
        out
    }

    /// Active channels (optionally matching a glob) of a namespace.
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let map = match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard_channels,
        };
        map.keys()
            .filter(|k| pattern.is_none_or(|p| crate::util::glob_match(p, k, false)))
            .cloned()
            .collect()
    }

    pub fn count(&self, kind: Kind, name: &[u8]) -> usize {
        let map = match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard_channels,
        };
        map.get(name).map_or(0, |v| v.len())
    }

    /// Number of distinct patterns with subscribers.
    pub fn numpat(&self) -> usize {
        self.patterns.len()
    }
}

/// Encodes a delivered message for a connection speaking `proto`.
pub fn encode(d: &Delivery, proto: u8, buf: &mut Vec<u8>) {
    let mut out = Out::new(buf, proto);
    match &d.pattern {
        Some(p) => {
            out.push(4);
            out.bulk(b"pmessage");
            out.bulk(p);
        }
        None => {
            out.push(3);
            out.bulk(if d.sharded { b"smessage" } else { b"message" });
        }
    }
    out.bulk(&d.channel);
    out.bulk(&d.message);
}

/// `notify-keyspace-events` as flags, readable from every shard without locks.
pub static NOTIFY_FLAGS: AtomicU32 = AtomicU32::new(0);

pub fn set_notify_flags(flags: u32) {
    NOTIFY_FLAGS.store(flags, Ordering::Relaxed);
}

/// The flag of a notification class letter.
pub fn class_flag(class: char) -> u32 {
    use crate::config::notify::*;
    match class {
        'g' => GENERIC,
        '$' => STRING,
        'l' => LIST,
        's' => SET,
        'h' => HASH,
        'z' => ZSET,
        'x' => EXPIRED,
        'e' => EVICTED,
        't' => STREAM,
        'm' => KEY_MISS,
        'n' => NEW,
        'd' => MODULE,
        _ => 0,
    }
}

/// Whether a notification of `class` would be published at all (cheap check for hot paths).
pub fn notify_enabled(class: char) -> bool {
    let f = NOTIFY_FLAGS.load(Ordering::Relaxed);
    f & class_flag(class) != 0
        && f & (crate::config::notify::KEYSPACE | crate::config::notify::KEYEVENT) != 0
}

/// A keyspace event recorded by a command, published after it runs.
#[derive(Clone, Debug)]
pub struct Notification {
    pub db: usize,
    pub class: char,
    pub event: &'static str,
    pub key: Bytes,
}

/// The (channel, message) pairs Redis publishes for one event.
pub fn notification_messages(n: &Notification) -> Vec<(Bytes, Bytes)> {
    let f = NOTIFY_FLAGS.load(Ordering::Relaxed);
    let mut v = Vec::new();
    if f & crate::config::notify::KEYSPACE != 0 {
        let mut ch = format!("__keyspace@{}__:", n.db).into_bytes();
        ch.extend_from_slice(&n.key);
        v.push((Bytes::from(ch), Bytes::from_static(n.event.as_bytes())));
    }
    if f & crate::config::notify::KEYEVENT != 0 {
        let ch = format!("__keyevent@{}__:{}", n.db, n.event).into_bytes();
        v.push((Bytes::from(ch), n.key.clone()));
    }
    v
}
