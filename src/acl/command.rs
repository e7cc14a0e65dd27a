//! The ACL command family and authentication (AUTH, HELLO AUTH), over the shared user table.

use super::{changed, table, Context, Denied, User};
use crate::commands::{err, flag, parse, Cmd};
use crate::protocol::Out;
use crate::server::ConnCtx;
use bytes::Bytes;
use std::sync::Arc;

const F: u32 = flag::NOSCRIPT | flag::LOADING | flag::STALE;
const A: u32 = F | flag::ADMIN;

pub static ACL_SUBS: [Cmd; 13] = [
    Cmd::conn("cat", -2, F, cat),
    Cmd::conn("deluser", -3, A, deluser),
    Cmd::conn("dryrun", -4, A, dryrun),
    Cmd::conn("genpass", -2, F, genpass),
    Cmd::conn("getuser", 3, A, getuser),
    Cmd::conn("help", 2, flag::LOADING | flag::STALE, help),
    Cmd::conn("list", 2, A, list),
    Cmd::conn("load", 2, A, load),
    Cmd::conn("log", -2, A, log),
    Cmd::conn("save", 2, A, save),
    Cmd::conn("setuser", -3, A, setuser),
    Cmd::conn("users", 2, A, users),
    Cmd::conn("whoami", 2, F, whoami),
];

pub static COMMANDS: [Cmd; 1] = [Cmd::container("acl", 0, &ACL_SUBS)];

pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Authenticates the connection as `user` (default when None) with `pass`
/// (`ACLAuthenticateUser`); logs a failure in ACL LOG with `cmd_name` as its object.
pub fn authenticate(
    ctx: &mut ConnCtx,
    user: Option<&[u8]>,
    pass: &[u8],
    cmd_name: &[u8],
) -> Result<(), &'static str> {
    let name = String::from_utf8_lossy(user.unwrap_or(b"default")).into_owned();
    let found = table().read().users.get(&name).cloned();
    match found {
        Some(u) if u.check_password(pass) => {
            ctx.client.authenticated = true;
            ctx.client.acl = super::perms_of(&u);
            super::set_client_user(ctx.client.id(), &name);
            Ok(())
        }
        _ => {
            let current = String::from_utf8_lossy(cmd_name).to_ascii_lowercase();
            let info = crate::commands::connection::client_line(
                &ctx.client.shared,
                ctx.now_ms,
                Some(&current),
            );
            super::log(
                Denied::Auth,
                Context::Toplevel,
                cmd_name,
                name.as_bytes(),
                info,
            );
            Err(WRONGPASS)
        }
    }
}

/// AUTH [username] password.
pub fn auth(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if args.len() > 3 {
        return out.error(err::SYNTAX);
    }
    if args.len() == 2 && !super::auth_required() {
        let nopass = table()
            .read()
            .users
            .get("default")
            .is_some_and(|u| u.nopass);
        if nopass {
            return out.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        }
    }
    let (user, pass) = if args.len() == 3 {
        (Some(&args[1][..]), &args[2])
    } else {
        (None, &args[1])
    };
    match authenticate(ctx, user, pass, &args[0]) {
        Ok(()) => out.ok(),
        Err(e) => out.error(e),
    }
}

/// Back to the default user (RESET).
pub fn reset_client(ctx: &mut ConnCtx) {
    super::set_client_user(ctx.client.id(), "default");
    ctx.client.authenticated = !super::auth_required();
    ctx.client.acl = super::default_perms();
}

/// `addReplySubcommandSyntaxError`.
fn sub_syntax(args: &[Bytes]) -> String {
    let shown: Vec<u8> = args[1].iter().take(128).copied().collect();
    format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        String::from_utf8_lossy(&shown)
    )
}

fn arg_str(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}

fn setuser(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let name = arg_str(&args[2]);
    if super::has_spaces(name.as_bytes()) {
        return out.error("ERR Usernames can't contain spaces or null characters");
    }
    let rules: Vec<String> = args[3..].iter().map(|a| arg_str(a)).collect();
    let mut t = table().write();
    let mut u = t
        .users
        .get(&name)
        .map(|u| (**u).clone())
        .unwrap_or_else(|| User::new(&name));
    if let Err(e) = u.apply_all(&rules) {
        return out.error(&format!("ERR {e}"));
    }
    let u = Arc::new(u);
    t.users.insert(name.clone(), u.clone());
    changed(&t);
    drop(t);
    kill_revoked_subscribers(ctx, &name, &u);
    refresh_self(ctx);
    out.ok();
}

/// The calling connection sees its own user's change at once (others at their next turn).
fn refresh_self(ctx: &mut ConnCtx) {
    super::refresh_clients(std::iter::once(&mut *ctx.client));
}

/// Disconnects the clients authenticated as one of `names`.
pub fn kill_clients_of(ctx: &mut ConnCtx, names: &[String]) {
    let mut ids = Vec::new();
    for n in names {
        ids.extend(super::clients_of(n));
    }
    if ids.is_empty() {
        return;
    }
    let me = ctx.client.id();
    for c in ctx.server.client_list() {
        if ids.contains(&c.id) {
            crate::commands::connection::kill(ctx, &c, me);
        }
    }
}

/// Disconnects `name`'s clients subscribed to a channel or pattern its rules no longer allow
/// (`ACLKillPubsubClientsIfNeeded`).
fn kill_revoked_subscribers(ctx: &mut ConnCtx, name: &str, user: &User) {
    if user.selectors.iter().any(|s| s.all_channels) {
        return;
    }
    let ids = super::clients_of(name);
    if ids.is_empty() {
        return;
    }
    let clients: Vec<_> = ctx
        .server
        .client_list()
        .into_iter()
        .filter(|c| ids.contains(&c.id))
        .collect();
    let mut doomed: Vec<u64> = Vec::new();
    ctx.server.pubsub.read().each(|kind, channel, conn| {
        let pattern = kind == crate::pubsub::Kind::Pattern;
        if user.channel_allowed(channel, pattern) {
            return;
        }
        for c in &clients {
            // Shard and token name a live connection (`ClientShared::gen` is not kept).
            if c.shard == conn.shard && c.token == conn.token {
                doomed.push(c.id);
            }
        }
    });
    let me = ctx.client.id();
    for c in clients.iter().filter(|c| doomed.contains(&c.id)) {
        crate::commands::connection::kill(ctx, c, me);
    }
}

fn deluser(ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if args[2..].iter().any(|a| &a[..] == b"default") {
        return out.error("ERR The 'default' user cannot be removed");
    }
    let mut t = table().write();
    let mut deleted = Vec::new();
    for a in &args[2..] {
        let n = arg_str(a);
        if t.users.remove(&n).is_some() {
            deleted.push(n);
        }
    }
    changed(&t);
    drop(t);
    kill_clients_of(ctx, &deleted);
    refresh_self(ctx);
    out.int(deleted.len() as i64);
}

fn selector_fields(out: &mut Out, s: &super::Selector) {
    out.bulk_str("commands");
    out.bulk_str(&s.command_rules());
    out.bulk_str("keys");
    out.bulk_str(&s.keys_text());
    out.bulk_str("channels");
    out.bulk_str(&s.channels_text());
}

fn getuser(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let t = table().read();
    let Some(u) = t.users.get(&arg_str(&args[2])) else {
        return out.null();
    };
    out.map(6);
    out.bulk_str("flags");
    let flags = u.flags();
    out.set(flags.len());
    for f in flags {
        out.bulk_str(f);
    }
    out.bulk_str("passwords");
    out.array(u.passwords.len());
    for p in &u.passwords {
        out.bulk_str(p);
    }
    if let Some(root) = u.selectors.first() {
        selector_fields(out, root);
    }
    out.bulk_str("selectors");
    out.array(u.selectors.len().saturating_sub(1));
    for s in u.selectors.iter().skip(1) {
        out.map(3);
        selector_fields(out, s);
    }
}

fn users(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let t = table().read();
    out.array(t.users.len());
    for n in t.users.keys() {
        out.bulk_str(n);
    }
}

fn list(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let t = table().read();
    out.array(t.users.len());
    for (n, u) in &t.users {
        out.bulk_str(&format!("user {} {}", n, u.describe()));
    }
}

fn whoami(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    out.bulk_str(&super::client_user(ctx.client.id()));
}

fn cat(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let cats = crate::commands::specs::CATEGORIES;
    let Some(name) = args.get(2) else {
        out.array(cats.len());
        for c in cats {
            out.bulk_str(c);
        }
        return;
    };
    if args.len() > 3 {
        return out.error(&sub_syntax(args));
    }
    let Some(bit) = super::category_bit(&arg_str(name)) else {
        let shown: Vec<u8> = name.iter().take(128).copied().collect();
        return out.error(&format!(
            "ERR Unknown category '{}'",
            String::from_utf8_lossy(&shown)
        ));
    };
    let names: Vec<&str> = super::registry()
        .cmds
        .iter()
        .filter(|c| c.cats & bit != 0)
        .map(|c| c.full)
        .collect();
    out.array(names.len());
    for n in names {
        out.bulk_str(n);
    }
}

fn genpass(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    const GENPASS_BITS_MAX: i64 = 4096;
    let mut bits = 256;
    if let Some(a) = args.get(2) {
        if args.len() > 3 {
            return out.error(&sub_syntax(args));
        }
        match parse::i64_arg(a) {
            Ok(n) => bits = n,
            Err(e) => return out.error(e),
        }
    }
    if bits <= 0 || bits > GENPASS_BITS_MAX {
        return out.error(&format!("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to {GENPASS_BITS_MAX}"));
    }
    let chars = ((bits + 3) / 4) as usize;
    let mut raw = vec![0u8; chars.div_ceil(2)];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut raw))
        .is_ok();
    if !filled {
        // No urandom: hash the clock so the reply is still a password, not zeros.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        let h = super::sha256::digest(seed.as_bytes());
        for (i, b) in raw.iter_mut().enumerate() {
            *b = h[i % h.len()];
        }
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    out.bulk_str(&hex[..chars]);
}

fn log(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    if args.len() > 3 {
        return out.error(&sub_syntax(args));
    }
    let mut count: i64 = 10;
    if let Some(a) = args.get(2) {
        if parse::eq(a, "reset") {
            table().write().log.clear();
            return out.ok();
        }
        match parse::i64_arg(a) {
            Ok(n) => count = n.max(0),
            Err(e) => return out.error(e),
        }
    }
    let now_ms = crate::util::now_ms();
    let t = table().read();
    let n = (count as usize).min(t.log.len());
    out.array(n);
    for e in t.log.iter().take(n) {
        out.map(7);
        out.bulk_str("count");
        out.int(e.count as i64);
        out.bulk_str("reason");
        out.bulk_str(match e.reason {
            Denied::Cmd => "command",
            Denied::Key => "key",
            Denied::Channel => "channel",
            Denied::Auth => "auth",
        });
        out.bulk_str("context");
        out.bulk_str(match e.context {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        });
        out.bulk_str("object");
        out.bulk(&e.object);
        out.bulk_str("username");
        out.bulk(&e.username);
        out.bulk_str("age-seconds");
        out.double(now_ms.saturating_sub(e.created_ms) as f64 / 1000.0);
        out.bulk_str("client-info");
        out.bulk_str(&e.client_info);
    }
}

fn dryrun(_ctx: &mut ConnCtx, args: &[Bytes], out: &mut Out) {
    let name = arg_str(&args[2]);
    let Some(u) = table().read().users.get(&name).cloned() else {
        return out.error(&format!("ERR User '{name}' not found"));
    };
    let cargs = &args[3..];
    let Some(mut cmd) = crate::commands::lookup(&cargs[0]) else {
        return out.error(&format!("ERR Command '{}' not found", arg_str(&cargs[0])));
    };
    let mut full = cmd.name;
    if !cmd.subcommands.is_empty() && cargs.len() >= 2 {
        if let Some(s) = cmd.find_sub(&cargs[1]) {
            full = crate::server::dispatch::full_name(cmd, s);
            cmd = s;
        }
    }
    let argc = cargs.len() as i32;
    if (cmd.arity > 0 && cmd.arity != argc) || argc < -cmd.arity {
        return out.error(&format!(
            "ERR wrong number of arguments for '{full}' command"
        ));
    }
    match u.check(cmd, cargs) {
        Ok(()) => out.ok(),
        Err((Denied::Cmd, _)) => out.bulk_str(&format!(
            "This user has no permissions to run the '{full}' command"
        )),
        Err((Denied::Channel, i)) => out.bulk_str(&format!(
            "This user has no permissions to access the '{}' channel",
            arg_str(&cargs[i])
        )),
        Err((_, i)) => out.bulk_str(&format!(
            "This user has no permissions to access the '{}' key",
            arg_str(&cargs[i])
        )),
    }
}

fn load(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let path = ctx.config().aclfile.clone();
    if path.is_empty() {
        return out.error(NO_ACLFILE);
    }
    match super::file::load(&path) {
        Ok(removed) => {
            kill_clients_of(ctx, &removed);
            refresh_self(ctx);
            out.ok();
        }
        Err(e) => out.error(&format!("ERR {e}")),
    }
}

fn save(ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    let path = ctx.config().aclfile.clone();
    if path.is_empty() {
        return out.error(NO_ACLFILE);
    }
    match super::file::save(&path) {
        Ok(()) => out.ok(),
        Err(_) => out.error("ERR There was an error trying to save the ACLs. Please check the server logs for more information"),
    }
}

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn help(_ctx: &mut ConnCtx, _args: &[Bytes], out: &mut Out) {
    crate::commands::object::help_reply(
        out,
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    );
}
