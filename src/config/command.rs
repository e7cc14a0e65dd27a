//! CONFIG GET and CONFIG SET as pure functions over a `Config` snapshot.
//!
//! CONFIG GET (Redis 7) takes several patterns: a name without `*`, `?` or `[` is looked up
//! directly (any case, aliases and hidden directives included, the reply echoing the name as
//! given); a pattern is matched, case-insensitively, against every registered name (primary
//! names and aliases, hidden ones left out). A directive is never reported twice.
//!
//! CONFIG SET (Redis 7) takes several pairs and is all-or-nothing: every name is checked first
//! (unknown, immutable, protected, refused while loading, duplicated), then the values are
//! applied one by one to a copy, and the first failure discards the copy. Error texts and
//! their precedence are `configSetCommand`'s.

use super::access::{self, Mode};
use super::directives::{self, Directive, DENY_LOADING, HIDDEN, IMMUTABLE, MULTI_ARG, PROTECTED};
use super::values::lossy;
use super::{Config, SetContext};
use std::collections::HashSet;

/// A validated CONFIG SET pair: the entry, whether it was named by its alias, the value.
type Chosen<'a> = (&'static Directive, bool, &'a [u8]);

impl Config {
    /// CONFIG GET with one or more patterns: `(name, value)` pairs, values formatted as Redis
    /// formats them (memory in plain bytes, booleans `yes`/`no`, `save` as `"3600 1 300 100"`).
    pub fn get(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for &pattern in patterns {
            if !pattern.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
                let key = pattern.to_ascii_lowercase();
                if seen.contains(&key) {
                    continue;
                }
                if let Some((d, _)) = directives::lookup(pattern) {
                    found.push((lossy(pattern), access::format_get(self, d)));
                    seen.insert(key);
                }
                continue;
            }
            for (name, d) in directives::registered() {
                if d.flags & HIDDEN != 0 || seen.contains(name.as_bytes()) {
                    continue;
                }
                if crate::util::glob_match(pattern, name.as_bytes(), true) {
                    found.push((name.to_string(), access::format_get(self, d)));
                    seen.insert(name.as_bytes().to_vec());
                }
            }
        }
        found
    }

    /// CONFIG SET with one or more `(name, value)` pairs, for a remote client while not
    /// loading. Returns the new config, or Redis's error reply text (`ERR ...`).
    pub fn set(&self, pairs: &[(&[u8], &[u8])]) -> Result<Config, String> {
        self.set_with(pairs, &SetContext::default())
    }

    /// CONFIG SET with the connection's context (local client, loading). Multi-argument values
    /// are split on single spaces (`"900 1 300 10"`), as Redis does for CONFIG SET. The caller
    /// checks the argument count (an odd count is a syntax error before this).
    pub fn set_with(&self, pairs: &[(&[u8], &[u8])], ctx: &SetContext) -> Result<Config, String> {
        let chosen = self.check_set_names(pairs, ctx)?;
        let mut next = self.clone();
        for (d, via_alias, value) in chosen {
            let args = if d.flags & MULTI_ARG != 0 {
                split_spaces(value)
            } else {
                vec![value.to_vec()]
            };
            access::assign(&mut next, d, &args, Mode::Command).map_err(|e| {
                format!(
                    "ERR CONFIG SET failed (possibly related to argument '{}') - {e}",
                    d.registered_name(via_alias)
                )
            })?;
        }
        Ok(next)
    }

    /// The name checks of CONFIG SET, all of them before any value is looked at.
    fn check_set_names<'a>(
        &self,
        pairs: &[(&'a [u8], &'a [u8])],
        ctx: &SetContext,
    ) -> Result<Vec<Chosen<'a>>, String> {
        let mut chosen: Vec<Chosen<'a>> = Vec::with_capacity(pairs.len());
        let mut unknown: Option<&[u8]> = None;
        let mut refused: Option<(&[u8], &str)> = None;
        let mut deny_loading = false;
        let mut invalid = false;
        for &(name, value) in pairs {
            let Some((d, via_alias)) = directives::lookup(name) else {
                if !invalid {
                    unknown = Some(name);
                    invalid = true;
                }
                continue;
            };
            if invalid {
                continue;
            }
            let protected = d.flags & PROTECTED != 0
                && !self.enable_protected_configs.allows(ctx.client_is_local);
            if d.flags & IMMUTABLE != 0 || protected {
                let why = if d.flags & IMMUTABLE != 0 {
                    "can't set immutable config"
                } else {
                    "can't set protected config"
                };
                refused = Some((name, why));
                invalid = true;
                continue;
            }
            if ctx.loading && d.flags & DENY_LOADING != 0 {
                deny_loading = true;
                invalid = true;
                continue;
            }
            // Redis registers an alias as an entry of its own: `x` and its alias both pass.
            if chosen
                .iter()
                .any(|&(c, a, _)| std::ptr::eq(c, d) && a == via_alias)
            {
                refused = Some((name, "duplicate parameter"));
                invalid = true;
            }
            chosen.push((d, via_alias, value));
        }
        if deny_loading {
            return Err("LOADING Redis is loading the dataset in memory".to_string());
        }
        if let Some(name) = unknown {
            let name = lossy(name);
            return Err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        }
        if let Some((name, why)) = refused {
            let name = lossy(name);
            return Err(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            ));
        }
        Ok(chosen)
    }
}

/// `sdssplitlen(value, " ")`: every single space separates, an empty value has no words.
fn split_spaces(value: &[u8]) -> Vec<Vec<u8>> {
    if value.is_empty() {
        return Vec::new();
    }
    value.split(|&c| c == b' ').map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(c: &Config, patterns: &[&str]) -> Vec<(String, String)> {
        let patterns: Vec<&[u8]> = patterns.iter().map(|p| p.as_bytes()).collect();
        c.get(&patterns)
    }

    fn set(c: &Config, pairs: &[(&str, &str)]) -> Result<Config, String> {
        let pairs: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        c.set(&pairs)
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    #[test]
    fn get_exact_names_aliases_and_patterns() {
        let c = Config::default();
        assert_eq!(get(&c, &["PORT", "port"]), vec![pair("PORT", "6379")]);
        assert_eq!(get(&c, &["nope"]), vec![]);
        assert_eq!(
            get(&c, &["key-load-delay"]),
            vec![pair("key-load-delay", "0")]
        );
        assert!(get(&c, &["*"]).iter().all(|(n, _)| n != "key-load-delay"));
        let res = get(&c, &["maxmemory", "maxmemory*", "bind", "*of"]);
        let names: Vec<&str> = res.iter().map(|(n, _)| n.as_str()).collect();
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len());
        for expected in [
            "maxmemory",
            "maxmemory-samples",
            "maxmemory-clients",
            "bind",
        ] {
            assert!(unique.contains(expected), "{expected}");
        }
        assert!(unique.contains("replicaof") && unique.contains("slaveof"));
        assert_eq!(
            get(&c, &["save"]),
            vec![pair("save", "3600 1 300 100 60 10000")]
        );
        assert_eq!(get(&c, &["bind"]), vec![pair("bind", "* -::*")]);
        assert_eq!(get(&c, &["hash-max-ziplist-*"]).len(), 2);
        assert_eq!(
            get(&c, &["SHARDS", "io-backend"]),
            vec![pair("SHARDS", "0"), pair("io-backend", "auto")]
        );
    }

    #[test]
    fn set_is_all_or_nothing() {
        let c = Config::default();
        let err = set(
            &c,
            &[("maxmemory", "10000001"), ("maxmemory-clients", "200%")],
        );
        assert_eq!(
            err.err().as_deref(),
            Some(
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - \
                 percentage argument must be less or equal to 100"
            )
        );
        assert_eq!(c.maxmemory, 0);
        let n = set(
            &c,
            &[("maxmemory", "10000001"), ("save", "3000 5"), ("hz", "20")],
        )
        .expect("valid");
        assert_eq!((n.maxmemory, n.hz), (10_000_001, 20));
        assert_eq!(get(&n, &["save"]), vec![pair("save", "3000 5")]);
        assert_eq!(c.changed_directives(&n), vec!["hz", "maxmemory", "save"]);
    }

    #[test]
    fn set_errors_like_redis() {
        let c = Config::default();
        let e = |pairs: &[(&str, &str)]| set(&c, pairs).err().unwrap_or_default();
        assert_eq!(
            e(&[("PORT", "abc")]),
            "ERR CONFIG SET failed (possibly related to argument 'port') - argument couldn't be \
             parsed into an integer"
        );
        assert_eq!(
            e(&[("port", "1"), ("port", "2")]),
            "ERR CONFIG SET failed (possibly related to argument 'port') - duplicate parameter"
        );
        assert_eq!(
            e(&[("maxmemory", "5"), ("MAXMEMORY", "6")]),
            "ERR CONFIG SET failed (possibly related to argument 'MAXMEMORY') - duplicate \
             parameter"
        );
        assert_eq!(
            e(&[("daemonize", "yes"), ("maxmemory", "foo")]),
            "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set \
             immutable config"
        );
        assert_eq!(
            e(&[("foo", "bar")]),
            "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
        );
        assert_eq!(
            e(&[("daemonize", "yes"), ("foo", "bar")]),
            "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set \
             immutable config"
        );
        assert_eq!(
            e(&[("dir", "/tmp")]),
            "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected \
             config"
        );
        assert_eq!(
            e(&[("shards", "4")]),
            "ERR CONFIG SET failed (possibly related to argument 'shards') - can't set immutable \
             config"
        );
        assert_eq!(
            e(&[("slave-read-only", "maybe")]),
            "ERR CONFIG SET failed (possibly related to argument 'slave-read-only') - argument \
             must be 'yes' or 'no'"
        );
        // An alias and its primary are distinct entries for Redis: the last one wins.
        let n = set(
            &c,
            &[
                ("hash-max-ziplist-entries", "1"),
                ("hash-max-listpack-entries", "2"),
            ],
        )
        .expect("valid");
        assert_eq!(n.hash_max_listpack_entries, 2);
    }

    #[test]
    fn set_context_protected_and_loading() {
        let c = Config {
            enable_protected_configs: super::super::ProtectedAction::Local,
            ..Config::default()
        };
        let pairs: [(&[u8], &[u8]); 1] = [(b"dbfilename", b"x.rdb")];
        let remote = SetContext {
            client_is_local: false,
            loading: false,
        };
        assert!(c.set_with(&pairs, &remote).is_err());
        let local = SetContext {
            client_is_local: true,
            loading: false,
        };
        assert_eq!(
            c.set_with(&pairs, &local).map(|n| n.dbfilename),
            Ok("x.rdb".to_string())
        );
        let loading = SetContext {
            client_is_local: true,
            loading: true,
        };
        let aof: [(&[u8], &[u8]); 1] = [(b"appendonly", b"yes")];
        assert_eq!(
            c.set_with(&aof, &loading).err().as_deref(),
            Some("LOADING Redis is loading the dataset in memory")
        );
    }

    #[test]
    fn set_multi_arg_values() {
        let c = Config::default();
        let n = set(&c, &[("save", "")]).expect("valid");
        assert!(n.save.is_empty());
        let n = set(&c, &[("client-output-buffer-limit", "")]).expect("no change");
        assert_eq!(n.client_output_buffer_limit, c.client_output_buffer_limit);
        let n = set(&c, &[("shutdown-on-sigterm", "nosave now")]).expect("valid");
        assert_eq!(
            get(&n, &["shutdown-on-sigterm"]),
            vec![pair("shutdown-on-sigterm", "nosave now")]
        );
        assert!(set(&c, &[("save", "900  1")]).is_err());
        assert!(set(&c, &[("oom-score-adj-values", "1 2")]).is_err());
        let n = set(&c, &[("bind", "")]).expect("valid");
        assert!(n.bind.is_empty());
        let n = set(&c, &[("requirepass", "")]).expect("valid");
        assert_eq!(n.requirepass, None);
    }

    #[test]
    fn sensitive_and_support() {
        assert!(Config::is_sensitive(b"REQUIREPASS"));
        assert!(Config::is_sensitive(b"masterauth"));
        assert!(!Config::is_sensitive(b"port"));
        assert_eq!(
            Config::support_of(b"port"),
            Some(super::super::Support::Engine)
        );
        assert!(Config::is_directive(b"slaveof"));
    }
}
