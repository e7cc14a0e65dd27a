//! Scripting (`eval.c`, `script_lua.c`, `functions.c` in Redis): EVAL and friends over the
//! shared keyspace, Redis's RESP↔Lua conversion rules both ways (RESP3 through
//! `redis.setresp`), error replies with their script positions, the sandbox, the bundled
//! libraries (cjson, cmsgpack, struct, bit), SCRIPT and FUNCTION commands.
//!
//! Scripts are drawn from a fixed list and fed keys and arguments from the generator, so
//! each body's sha is stable and EVALSHA / SCRIPT EXISTS meet both cached and unknown
//! scripts. Only one function library name is used, each version registering one function
//! (FUNCTION LIST orders libraries, and a library's functions, in each server's own hash order).

use super::{Cmd, Gen, GenFn};

const COMMANDS: &[(u32, GenFn)] = &[
    (20, eval_keys),
    (12, eval_pure),
    (4, eval_errors),
    (3, evalsha),
    (2, eval_ro),
    (2, script_cmds),
    (3, functions),
];

pub fn generate(g: &mut Gen) -> Cmd {
    let command = *g.rng.weighted(COMMANDS);
    command(g)
}

/// Bodies using KEYS[1..2] and ARGV[1].
const KEY_SCRIPTS: &[&str] = &[
    "return redis.call('get', KEYS[1])",
    "return redis.call('set', KEYS[1], ARGV[1])",
    "return redis.call('incr', KEYS[1])",
    "return redis.pcall('incr', KEYS[1])",
    "return redis.pcall('lpush', KEYS[1], ARGV[1])",
    "return redis.call('lrange', KEYS[1], 0, -1)",
    // Hash-table order is each server's own: hashes and sets come back sorted.
    "local r = redis.call('hgetall', KEYS[1]) local t = {} for i = 1, #r, 2 do t[#t + 1] = r[i] .. '=' .. r[i + 1] end table.sort(t) return t",
    "return redis.call('type', KEYS[1])",
    "return redis.call('exists', KEYS[1], KEYS[2])",
    "return redis.call('del', KEYS[1])",
    "return redis.call('zrange', KEYS[1], 0, -1, 'withscores')",
    "local r = redis.call('smembers', KEYS[1]) table.sort(r) return r",
    "redis.setresp(3) local r = redis.call('hgetall', KEYS[1]) local t = {} for k, v in pairs(r.map) do t[#t + 1] = k .. '=' .. v end table.sort(t) return t",
    "redis.setresp(3) return redis.call('zscore', KEYS[1], ARGV[1])",
    "redis.setresp(3) return redis.call('get', KEYS[1])",
    "redis.setresp(3) return {redis.call('exists', KEYS[1]), redis.call('type', KEYS[1])}",
    "local v = redis.call('get', KEYS[1]) if v then redis.call('set', KEYS[2], v) end return v",
    "return redis.call('rename', KEYS[1], KEYS[2])",
    "redis.call('set', KEYS[1], ARGV[1]) return redis.call('incr', KEYS[1])",
    "return redis.call('mget', KEYS[1], KEYS[2])",
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], 100000) else return 0 end",
    "return redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', 100000)",
    "return cjson.encode({redis.call('type', KEYS[1]), ARGV[1]})",
    "return redis.call('blpop', KEYS[1], 0)",
    "return redis.call('blmpop', 0, 1, KEYS[1], 'left')",
];

/// Bodies needing no keys: conversions, libraries, the sandbox, errors.
const PURE_SCRIPTS: &[&str] = &[
    "return 1",
    "return 3.99",
    "return -2.5",
    "return 'hello'",
    "return true",
    "return false",
    "return nil",
    "return {1, 2, {3, 'x'}, 'y'}",
    "return {1, nil, 3}",
    "return {ok = 'FINE'}",
    "return {err = 'MYERR custom'}",
    "return redis.status_reply('OK2')",
    "return redis.error_reply('My Error')",
    "return redis.error_reply('-CODE with code')",
    "return {double = 3.25}",
    "return {big_number = '123456789012345678901234567890'}",
    "return {map = {a = 1}}",
    "return {set = {a = true}}",
    "return {verbatim_string = {format = 'txt', string = 'hi'}}",
    "redis.setresp(3) return {double = 1.5}",
    "redis.setresp(3) return true",
    "redis.setresp(3) return false",
    "return redis.sha1hex('abc')",
    "return redis.REDIS_VERSION",
    "return redis.REDIS_VERSION_NUM",
    "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}",
    "return {redis.REPL_NONE, redis.REPL_AOF, redis.REPL_REPLICA, redis.REPL_ALL}",
    "return cjson.encode({1, 2, 3, 'a/b', {x = 1}})",
    "return cjson.encode({})",
    "return cjson.encode(0.1)",
    "return cjson.encode('\\1\\127\"\\\\')",
    "return cjson.decode('[1, 2.5, \"x\", [true, false]]')",
    "return cjson.decode('{\"a\": [1, {\"b\": 2}]}').a[2].b",
    "return cjson.decode('[1, 2')",
    "return cjson.decode('{1: 2}')",
    "return cjson.encode({[1] = 1, [3] = 3})",
    "return cjson.encode({[1] = 1, [20] = 3})",
    "local e = cmsgpack.pack({1, 2, 3}, 'abc', -1, 1.5, 70000, -70000, {a = 1}) local h = '' for i = 1, #e do h = h .. string.format('%02x', e:byte(i)) end return h",
    "return {cmsgpack.unpack(cmsgpack.pack({1, 2, 3}, 'abc', -1))}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), 0)}",
    "return cmsgpack.unpack('\\193')",
    "local s = struct.pack('>iHb<d', 1, 2, -3, 1.5) local h = '' for i = 1, #s do h = h .. string.format('%02x', s:byte(i)) end return h",
    "return {struct.unpack('>iHb', struct.pack('>iHb', -7, 65535, -3))}",
    "return struct.size('!8bd')",
    "return struct.pack('y')",
    "return {struct.unpack('s', 'hello\\0world')}",
    "return {bit.band(0xff, 0x0f, 3), bit.bor(1, 2, 4), bit.bxor(5, 3), bit.bnot(0)}",
    "return {bit.lshift(1, 33), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(1, 33), bit.ror(1, 1)}",
    "return {bit.tohex(65535, -2147483648), bit.tohex(-1, 4), bit.tohex(255)}",
    "return bit.tobit(4294967297)",
    "a = 10",
    "return undefined_global",
    "return os",
    "return print",
    "return loadfile",
    "setmetatable(_G, {})",
    "redis.call = function() return 1 end",
    "cjson.encode = nil",
    "error('boom')",
    "error({err = 'CUSTOM raised'})",
    "return redis.call()",
    "return redis.call('nosuchcommand')",
    "return redis.call('get')",
    "return redis.call('set', 'x', {})",
    "return redis.call('eval', 'return 1', 0)",
    "return redis.call('script', 'flush')",
    "return redis.call('ping')",
    "return redis.pcall('incr', 'x', 'y')",
    "local ok, e = pcall(function() redis.call('nosuch') end) return e",
    "return pcall(error, 'x')",
    "return redis.log(redis.LOG_NOTICE, 'diff', 'test')",
    "return redis.log('x')",
    "return redis.setresp(4)",
    "return redis.set_repl(redis.REPL_ALL)",
    "return redis.set_repl(7)",
    "return redis.replicate_commands()",
    "return redis.breakpoint()",
    "return {unpack({1, 2, 3}, -2, 2147483647)}",
    "return tostring(1e15) .. tostring(0.1) .. tostring(-0.0)",
    "return string.format('%5.2f|%d|%s', 3.14159, 42, 'x')",
    "return table.concat({1, 2, 3}, ',')",
    "return #KEYS + #ARGV",
    "return ARGV",
    "x =",
    "return loadstring(string.dump(function() return 1 end))",
    "return getmetatable('').__index == string",
    "getmetatable('').__index = {}",
    "#!lua flags=no-writes\nreturn redis.call('set', 'k', 'v')",
    "#!lua flags=no-writes,allow-oom\nreturn 1",
    "#!lua flags=bogus\nreturn 1",
    "#!lua2\nreturn 1",
    "#!lua name=x\nreturn 1",
    "#!lua\nreturn redis.call('ping')",
    // What a run does to KEYS and ARGV must not reach the next run.
    "KEYS.x = ARGV[1] KEYS[5] = 'k5' ARGV[3] = 'a3' return #KEYS",
    "setmetatable(KEYS, {__index = function() return 'meta' end}) return #KEYS",
    "table.remove(KEYS, 1) table.insert(ARGV, 'more') return {#KEYS, #ARGV}",
    "return {#KEYS, #ARGV, tostring(KEYS.x), tostring(KEYS[5]), tostring(ARGV[3]), tostring(KEYS[3]), tostring(getmetatable(KEYS) == nil)}",
];

fn pick_args(g: &mut Gen, body: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let keys = if body.contains("KEYS") {
        g.keys(2)
    } else {
        Vec::new()
    };
    let v = g.value();
    (keys, vec![v])
}

fn eval_with(g: &mut Gen, name: &str, body: &str) -> Cmd {
    let (keys, args) = pick_args(g, body);
    g.c(name)
        .arg(body)
        .arg(keys.len().to_string())
        .args(keys)
        .args(args)
        .exact()
}

fn eval_keys(g: &mut Gen) -> Cmd {
    let body = *g.rng.pick(KEY_SCRIPTS);
    eval_with(g, "EVAL", body)
}

fn eval_pure(g: &mut Gen) -> Cmd {
    let body = *g.rng.pick(PURE_SCRIPTS);
    eval_with(g, "EVAL", body)
}

fn eval_ro(g: &mut Gen) -> Cmd {
    let body = if g.rng.chance(1, 2) {
        *g.rng.pick(KEY_SCRIPTS)
    } else {
        *g.rng.pick(PURE_SCRIPTS)
    };
    eval_with(g, "EVAL_RO", body)
}

fn sha(body: &str) -> String {
    let digest = sha1_smol::Sha1::from(body.as_bytes()).digest().to_string();
    digest
}

fn evalsha(g: &mut Gen) -> Cmd {
    let body = *g.rng.pick(KEY_SCRIPTS);
    let (keys, args) = pick_args(g, body);
    let mut s = sha(body);
    if g.rng.chance(1, 4) {
        s = s.to_uppercase();
    }
    if g.rng.chance(1, 8) {
        s = "ffffffffffffffffffffffffffffffffffffffff".into();
    }
    let name = if g.rng.chance(1, 4) {
        "EVALSHA_RO"
    } else {
        "EVALSHA"
    };
    g.c(name)
        .arg(s)
        .arg(keys.len().to_string())
        .args(keys)
        .args(args)
        .exact()
}

fn eval_errors(g: &mut Gen) -> Cmd {
    match g.rng.below(6) {
        0 => g.c("EVAL").arg("return 1").arg("-1").exact(),
        1 => g.c("EVAL").arg("return 1").arg("3").arg("a").exact(),
        2 => g.c("EVAL").arg("return 1").arg("x").exact(),
        3 => g.c("EVAL").arg("return 1").exact(),
        4 => g.c("EVALSHA").arg("abc").arg("0").exact(),
        _ => g.c("FCALL").arg("nosuchfunc").arg("0").exact(),
    }
}

fn script_cmds(g: &mut Gen) -> Cmd {
    match g.rng.below(6) {
        0 => {
            let body = *g.rng.pick(KEY_SCRIPTS);
            g.c("SCRIPT").arg("LOAD").arg(body).exact()
        }
        1 => {
            let key_body: &&str = g.rng.pick(KEY_SCRIPTS);
            let pure_body: &&str = g.rng.pick(PURE_SCRIPTS);
            let (a, b) = (sha(key_body), sha(pure_body));
            g.c("SCRIPT")
                .arg("EXISTS")
                .arg(a)
                .arg(b)
                .arg("nope")
                .exact()
        }
        2 => g.c("SCRIPT").arg("KILL").exact(),
        3 => g.c("SCRIPT").arg("FLUSH").arg("BOGUS").exact(),
        4 => g.c("SCRIPT").arg("LOAD").arg("return +").exact(),
        _ => g.c("SCRIPT").arg("EXISTS").exact(),
    }
}

const LIBRARIES: &[&str] = &[
    "#!lua name=difflib\nredis.register_function('dget', function(keys, args) return redis.call('get', keys[1]) end)",
    "#!lua name=difflib\nredis.register_function{function_name='dro', callback=function(keys, args) return args[1] end, flags={'no-writes'}, description='echo'}",
    "#!lua name=difflib\nredis.register_function('dset', function(keys, args) return redis.call('set', keys[1], args[1]) end)",
    "#!lua name=difflib\nredis.register_function('dget', 1)",
    "#!lua name=difflib\nlocal x = 1",
    "#!lua name=difflib\nredis.call('ping')",
    "#!lua name=difflib\nreturn math.random()",
    "#!lua name=difflib\nx = 1",
    "#!lua name=difflib\nredis.register_function{function_name='dget', callback=function() return 1 end, flags={'bogus'}}",
    "#!lua name=bad-name\nredis.register_function('f', function() return 1 end)",
    "#!lua\nredis.register_function('f', function() return 1 end)",
    "#!notlua name=difflib\nredis.register_function('f', function() return 1 end)",
    "no shebang",
];

fn functions(g: &mut Gen) -> Cmd {
    match g.rng.below(9) {
        0 | 1 => {
            let lib = *g.rng.pick(LIBRARIES);
            let c = g.c("FUNCTION").arg("LOAD");
            let c = if g.rng.chance(3, 4) {
                c.arg("REPLACE")
            } else {
                c
            };
            c.arg(lib).exact()
        }
        2 => {
            let key = g.key();
            g.c("FCALL").arg("dget").arg("1").arg(key).exact()
        }
        3 => {
            let key = g.key();
            let v = g.value();
            g.c("FCALL").arg("DSET").arg("1").arg(key).arg(v).exact()
        }
        4 => {
            let v = g.value();
            g.c("FCALL_RO").arg("dro").arg("0").arg(v).exact()
        }
        5 => {
            let key = g.key();
            let v = g.value();
            g.c("FCALL_RO").arg("dset").arg("1").arg(key).arg(v).exact()
        }
        6 => g.c("FUNCTION").arg("LIST").arg("WITHCODE").exact(),
        7 => g.c("FUNCTION").arg("DELETE").arg("difflib").exact(),
        _ => g.c("FUNCTION").arg("STATS").exact(),
    }
}
