//! The ACL file (`aclfile`): `user <name> <rules>` lines, loaded at start-up and by ACL LOAD,
//! written by ACL SAVE. Loading is all or nothing, as Redis's `ACLLoadFromFile`.

use super::{changed, merge_selector_args, table, User};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Parses the `user` lines of an ACL file (or of redis.conf `user` directives).
pub fn parse_users(text: &str, path: &str) -> Result<BTreeMap<String, Arc<User>>, String> {
    let mut users: BTreeMap<String, Arc<User>> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let lineno = i + 1;
        let parts = crate::config::values::split_args(line.as_bytes())
            .ok_or_else(|| format!("{path}:{lineno}: unbalanced quotes in acl line. "))?;
        let parts: Vec<String> = parts
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        if parts.first().map(String::as_str) != Some("user") || parts.len() < 2 {
            return Err(format!("{path}:{lineno}: should start with user keyword. "));
        }
        let name = &parts[1];
        if super::has_spaces(name.as_bytes()) {
            return Err(format!(
                "{path}:{lineno}: username '{name}' contains invalid characters. "
            ));
        }
        if users.contains_key(name) {
            return Err(format!("{path}:{lineno}: Duplicate user '{name}' found. "));
        }
        let rules = merge_selector_args(&parts[2..])
            .map_err(|_| format!("{path}:{lineno}: Unmatched parenthesis in acl selector. "))?;
        let mut u = User::new(name);
        for r in &rules {
            u.apply(r)
                .map_err(|e| format!("{path}:{lineno}: {}. ", e.text()))?;
        }
        users.insert(name.clone(), Arc::new(u));
    }
    Ok(users)
}

/// Replaces the user table with the file's users; returns the names that disappeared.
pub fn load(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Error loading ACLs, opening file '{path}': {e}"))?;
    let mut users = parse_users(&text, path)?;
    users
        .entry("default".into())
        .or_insert_with(|| Arc::new(User::default_user()));
    let mut t = table().write();
    let removed: Vec<String> = t
        .users
        .keys()
        .filter(|n| !users.contains_key(*n))
        .cloned()
        .collect();
    t.users = users;
    changed(&t);
    Ok(removed)
}

/// The `user` lines describing every user.
pub fn render() -> String {
    let t = table().read();
    let mut s = String::new();
    for (n, u) in &t.users {
        s.push_str(&format!("user {} {}\n", n, u.describe()));
    }
    s
}

/// Writes the table to `path` through a temporary file and a rename.
pub fn save(path: &str) -> std::io::Result<()> {
    let tmp = format!("{path}.tmp-{}", std::process::id());
    std::fs::write(&tmp, render())?;
    std::fs::rename(&tmp, path)
}
