//! The geo family (Redis's `geo.c`): positions stored as sorted set members whose score is
//! their 52-bit geohash (`geohash`), and searches over them.
//!
//! GEOADD is ZADD with the coordinates turned into scores (Redis rewrites the command into a
//! ZADD, so options, replies and events are ZADD's). GEOSEARCH, GEOSEARCHSTORE, GEORADIUS,
//! GEORADIUSBYMEMBER and the two _RO forms share `search`, which follows
//! `georadiusGeneric` step by step: the same option loop and checks in the same order, the
//! same nine-cell search in the same cell order (so ANY and duplicates come out the same), the
//! same sorts (a stable merge sort for a full sort, as glibc's `qsort` is, and Redis's own
//! partial quicksort `pqsort` when COUNT keeps fewer than were found, so ties come out in
//! Redis's order), and the same number formatting (`%.17Lf` trimmed for coordinates,
//! `fixedpoint_d2string` with four decimals for distances).
//!
//! Deliberate difference: when the nine cells overlap so that a member is found twice (huge
//! radii), Redis's STORE path aborts on the duplicate; here the stored set keeps the member
//! once, with the first score found.

pub mod geohash;
#[cfg(test)]
mod tests;

use super::zset::{read_zset, WrongType};
use super::{err, flag, parse, Args, Cmd, Keys};
use crate::protocol::Out;
use crate::storage::zset::{ScoreRange, ZSet};
use crate::storage::{Keyspace, Value};
use bytes::Bytes;
use geohash::{Bits, Extent, Shape};

const READ_SLOW: &[&str] = &["read", "geo", "slow"];
const WRITE_SLOW: &[&str] = &["write", "geo", "slow"];
const RO: u32 = flag::READONLY;
const RW: u32 = flag::WRITE | flag::DENYOOM;
const KEY: Keys = Keys::Range(1, 1, 1);

pub static COMMANDS: [Cmd; 10] = [
    Cmd::data("geoadd", -5, RW, KEY, geoadd).with_acl(WRITE_SLOW),
    Cmd::data("geodist", -4, RO, KEY, geodist).with_acl(READ_SLOW),
    Cmd::data("geohash", -2, RO, KEY, geohash_command).with_acl(READ_SLOW),
    Cmd::data("geopos", -2, RO, KEY, geopos).with_acl(READ_SLOW),
    Cmd::data("georadius", -6, RW, Keys::Custom(georadius_keys), georadius).with_acl(WRITE_SLOW),
    Cmd::data("georadius_ro", -6, RO, KEY, georadius_ro).with_acl(READ_SLOW),
    Cmd::data(
        "georadiusbymember",
        -5,
        RW,
        Keys::Custom(georadius_keys),
        georadiusbymember,
    )
    .with_acl(WRITE_SLOW),
    Cmd::data("georadiusbymember_ro", -5, RO, KEY, georadiusbymember_ro).with_acl(READ_SLOW),
    Cmd::data("geosearch", -7, RO, KEY, geosearch).with_acl(READ_SLOW),
    Cmd::data(
        "geosearchstore",
        -8,
        RW,
        Keys::Range(1, 2, 1),
        geosearchstore,
    )
    .with_acl(WRITE_SLOW),
];

const ERR_UNIT: &str = "ERR unsupported unit provided. please use M, KM, FT, MI";
const ERR_MEMBER: &str = "ERR could not decode requested zset member";

/// `georadiusGetKeys`: the source, and the key after the last STORE or STOREDIST from
/// argument 5 on.
fn georadius_keys(args: &Args) -> Vec<usize> {
    let mut stored = None;
    let mut i = 5;
    while i < args.len() {
        if (parse::kw(&args[i], "store") || parse::kw(&args[i], "storedist")) && i + 1 < args.len()
        {
            stored = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    std::iter::once(1).chain(stored).collect()
}

// ---------------------------------------------------------------------------------------
// Argument helpers and number formatting.

/// `extractLongLatOrReply`: longitude and latitude, parsed and range-checked.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<[f64; 2], String> {
    let parse = |b: &[u8]| super::zset::number::string2d(b).ok_or(err::NOT_FLOAT.to_string());
    let xy = [parse(lon)?, parse(lat)?];
    if xy[0] < geohash::LONG_MIN
        || xy[0] > geohash::LONG_MAX
        || xy[1] < geohash::LAT_MIN
        || xy[1] > geohash::LAT_MAX
    {
        return Err(format!(
            "ERR invalid longitude,latitude pair {:.6},{:.6}",
            xy[0], xy[1]
        ));
    }
    Ok(xy)
}

/// `extractUnitOrReply`: meters per unit.
fn unit(b: &[u8]) -> Result<f64, &'static str> {
    if parse::kw(b, "m") {
        Ok(1.0)
    } else if parse::kw(b, "km") {
        Ok(1000.0)
    } else if parse::kw(b, "ft") {
        Ok(0.3048)
    } else if parse::kw(b, "mi") {
        Ok(1609.34)
    } else {
        Err(ERR_UNIT)
    }
}

/// `extractDistanceOrReply`: (radius, meters per unit).
fn radius_arg(value: &[u8], unit_arg: &[u8]) -> Result<(f64, f64), &'static str> {
    let r = super::zset::number::string2d(value).ok_or("ERR need numeric radius")?;
    if r < 0.0 {
        return Err("ERR radius cannot be negative");
    }
    Ok((r, unit(unit_arg)?))
}

/// `extractBoxOrReply`: (width, height, meters per unit).
fn box_arg(w: &[u8], h: &[u8], unit_arg: &[u8]) -> Result<(f64, f64, f64), &'static str> {
    let w = super::zset::number::string2d(w).ok_or("ERR need numeric width")?;
    let h = super::zset::number::string2d(h).ok_or("ERR need numeric height")?;
    if h < 0.0 || w < 0.0 {
        return Err("ERR height or width cannot be negative");
    }
    Ok((w, h, unit(unit_arg)?))
}

/// `llrint` as x86-64 computes it: round half to even, out of range (or NaN) gives i64::MIN.
fn llrint(x: f64) -> i64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    let r = x.round_ties_even();
    if r.is_nan() || !(-TWO63..TWO63).contains(&r) {
        i64::MIN
    } else {
        r as i64
    }
}

/// A distance as Redis prints it (`fixedpoint_d2string(d, 4)`).
fn fmt_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".to_string();
    }
    let v = llrint(d * 10000.0);
    let u = v.unsigned_abs();
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}.{:04}", u / 10000, u % 10000)
}

/// A coordinate as Redis prints it (`ld2string(LD_STR_HUMAN)`: `%.17Lf`, trailing zeros and
/// point removed, `-0` as `0`).
fn fmt_human(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let s = format!("{d:.17}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// `addReplyHumanLongDouble`: a bulk string in RESP2, a double in RESP3.
fn reply_human(out: &mut Out, d: f64) {
    let s = fmt_human(d);
    if out.resp3() {
        out.raw(b",");
        out.raw(s.as_bytes());
        out.raw(b"\r\n");
    } else {
        out.bulk(s.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------
// GEOADD, GEOPOS, GEODIST, GEOHASH.

/// GEOADD key [NX|XX] [CH] lon lat member...: rewritten into ZADD as Redis does.
fn geoadd(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let (mut xx, mut nx) = (false, false);
    let mut first = 2;
    while let Some(opt) = args.get(first) {
        if parse::kw(opt, "nx") {
            nx = true;
        } else if parse::kw(opt, "xx") {
            xx = true;
        } else if !parse::kw(opt, "ch") {
            break;
        }
        first += 1;
    }
    if !(args.len() - first).is_multiple_of(3) || (xx && nx) {
        return out.error(err::SYNTAX);
    }
    let mut zadd: Vec<Bytes> = Vec::with_capacity(first + (args.len() - first) / 3 * 2);
    zadd.push(Bytes::from_static(b"zadd"));
    zadd.extend(args[1..first].iter().cloned());
    for triple in args[first..].chunks(3) {
        let xy = match lon_lat(&triple[0], &triple[1]) {
            Ok(xy) => xy,
            Err(e) => return out.error(&e),
        };
        let bits =
            geohash::encode_wgs84(xy[0], xy[1], geohash::STEP_MAX).map_or(0, geohash::align52);
        zadd.push(Bytes::from(bits.to_string()));
        zadd.push(triple[2].clone());
    }
    super::zset::zadd_command(ks, &zadd, out);
    // Propagated as the ZADD it is.
    ks.rewrite_as(|| zadd);
}

/// GEOPOS key member...: [lon, lat] per member, a null array for missing ones.
fn geopos(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let z = match read_zset(ks, &args[1]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    out.array(args.len() - 2);
    for member in &args[2..] {
        match z.and_then(|z| z.score(member)) {
            None => out.null_array(),
            Some(score) => {
                let xy = geohash::decode_score(score);
                out.array(2);
                reply_human(out, xy[0]);
                reply_human(out, xy[1]);
            }
        }
    }
}

/// GEODIST key member1 member2 [unit]: the unit is checked before the lookup.
fn geodist(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    let to_meters = match args.len() {
        5 => match unit(&args[4]) {
            Ok(u) => u,
            Err(e) => return out.error(e),
        },
        n if n > 5 => return out.error(err::SYNTAX),
        _ => 1.0,
    };
    let z = match read_zset(ks, &args[1]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(None) => return out.null(),
        Ok(Some(z)) => z,
    };
    let (Some(s1), Some(s2)) = (z.score(&args[2]), z.score(&args[3])) else {
        return out.null();
    };
    let a = geohash::decode_score(s1);
    let b = geohash::decode_score(s2);
    let d = geohash::distance(a[0], a[1], b[0], b[1]) / to_meters;
    out.bulk(fmt_distance(d).as_bytes());
}

/// GEOHASH key member...: the standard 11-character geohash of each member (re-encoded over
/// latitudes -90..90, the last character always `0`).
fn geohash_command(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let z = match read_zset(ks, &args[1]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    out.array(args.len() - 2);
    for member in &args[2..] {
        let Some(score) = z.and_then(|z| z.score(member)) else {
            out.null();
            continue;
        };
        let xy = geohash::decode_score(score);
        let standard_lat = geohash::Range {
            min: -90.0,
            max: 90.0,
        };
        let bits = geohash::encode(geohash::LONG_RANGE, standard_lat, xy[0], xy[1], 26)
            .map_or(0, |h| h.bits);
        let mut text = [0u8; 11];
        for (i, c) in text.iter_mut().enumerate() {
            let idx = if i == 10 {
                0
            } else {
                (bits >> (52 - (i + 1) * 5)) & 0x1f
            };
            *c = ALPHABET[idx as usize];
        }
        out.bulk(&text);
    }
}

// ---------------------------------------------------------------------------------------
// Searches.

/// Which command runs the search (`RADIUS_*` and `GEOSEARCH*` flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS: centre and radius as arguments 2..6.
    Radius {
        store: bool,
    },
    /// GEORADIUSBYMEMBER: centre member and radius as arguments 2..5.
    ByMember {
        store: bool,
    },
    Search,
    SearchStore,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A parsed search.
struct Search {
    shape: Shape,
    withdist: bool,
    withhash: bool,
    withcoords: bool,
    sort: Sort,
    any: bool,
    /// 0: no COUNT.
    count: i64,
    /// Where the result goes: the argument index of the key, and whether scores are the
    /// distances.
    store: Option<(usize, bool)>,
}

/// One point found (`geoPoint`).
struct Point {
    xy: [f64; 2],
    dist: f64,
    score: f64,
    member: Vec<u8>,
}

/// `longLatFromMember`.
fn member_xy(z: &ZSet, member: &[u8]) -> Result<[f64; 2], Vec<u8>> {
    z.score(member)
        .map(geohash::decode_score)
        .ok_or_else(|| ERR_MEMBER.as_bytes().to_vec())
}

fn bytes_err(e: impl AsRef<[u8]>) -> Vec<u8> {
    e.as_ref().to_vec()
}

/// What the FROM.../BY... options have set so far (GEOSEARCH forms).
#[derive(Default)]
struct Given {
    frommember: bool,
    fromloc: bool,
    byradius: bool,
    bybox: bool,
}

/// `georadiusGeneric`'s parsing, in its order: the form's fixed arguments, then the options
/// loop, then the cross-option checks.
fn parse_search(args: &Args, z: Option<&ZSet>, form: Form) -> Result<Search, Vec<u8>> {
    let mut s = Search {
        shape: Shape {
            xy: [0.0, 0.0],
            conversion: 0.0,
            extent: Extent::Circle { radius: 0.0 },
        },
        withdist: false,
        withhash: false,
        withcoords: false,
        sort: Sort::None,
        any: false,
        count: 0,
        store: None,
    };
    let base = fixed_args(args, z, form, &mut s)?;
    let mut given = Given::default();
    let mut i = base;
    while i < args.len() {
        i += 1 + search_option(args, i, z, form, &mut s, &mut given)?;
    }
    check_search(args, form, &s, &given)?;
    Ok(s)
}

/// The arguments before the options: GEORADIUS's centre and radius, GEORADIUSBYMEMBER's
/// member and radius (not parsed at all when the key is missing, as in Redis), the
/// GEOSEARCHSTORE destination. Returns where the options start.
fn fixed_args(args: &Args, z: Option<&ZSet>, form: Form, s: &mut Search) -> Result<usize, Vec<u8>> {
    match form {
        Form::Radius { .. } => {
            s.shape.xy = lon_lat(&args[2], &args[3]).map_err(bytes_err)?;
            let (radius, conversion) = radius_arg(&args[4], &args[5]).map_err(bytes_err)?;
            s.shape.conversion = conversion;
            s.shape.extent = Extent::Circle { radius };
            Ok(6)
        }
        Form::ByMember { .. } => {
            if let Some(z) = z {
                s.shape.xy = member_xy(z, &args[2])?;
                let (radius, conversion) = radius_arg(&args[3], &args[4]).map_err(bytes_err)?;
                s.shape.conversion = conversion;
                s.shape.extent = Extent::Circle { radius };
            }
            Ok(5)
        }
        Form::Search => Ok(2),
        Form::SearchStore => {
            s.store = Some((1, false));
            Ok(3)
        }
    }
}

/// Parses the option at `args[i]`; returns how many values after it it took.
fn search_option(
    args: &Args,
    i: usize,
    z: Option<&ZSet>,
    form: Form,
    s: &mut Search,
    given: &mut Given,
) -> Result<usize, Vec<u8>> {
    let a = &args[i];
    let left = args.len() - i - 1;
    let search = matches!(form, Form::Search | Form::SearchStore);
    let may_store = matches!(
        form,
        Form::Radius { store: true } | Form::ByMember { store: true }
    );
    if parse::kw(a, "withdist") {
        s.withdist = true;
    } else if parse::kw(a, "withhash") {
        s.withhash = true;
    } else if parse::kw(a, "withcoord") {
        s.withcoords = true;
    } else if parse::kw(a, "any") {
        s.any = true;
    } else if parse::kw(a, "asc") {
        s.sort = Sort::Asc;
    } else if parse::kw(a, "desc") {
        s.sort = Sort::Desc;
    } else if parse::kw(a, "count") && left >= 1 {
        s.count = parse::i64_arg(&args[i + 1]).map_err(bytes_err)?;
        if s.count <= 0 {
            return Err(bytes_err("ERR COUNT must be > 0"));
        }
        return Ok(1);
    } else if (parse::kw(a, "store") || parse::kw(a, "storedist")) && left >= 1 && may_store {
        s.store = Some((i + 1, parse::kw(a, "storedist")));
        return Ok(1);
    } else if parse::kw(a, "storedist") && form == Form::SearchStore {
        s.store = Some((1, true));
    } else if parse::kw(a, "frommember") && left >= 1 && search && !given.fromloc {
        if let Some(z) = z {
            s.shape.xy = member_xy(z, &args[i + 1])?;
        }
        given.frommember = true;
        return Ok(1);
    } else if parse::kw(a, "fromlonlat") && left >= 2 && search && !given.frommember {
        s.shape.xy = lon_lat(&args[i + 1], &args[i + 2]).map_err(bytes_err)?;
        given.fromloc = true;
        return Ok(2);
    } else if parse::kw(a, "byradius") && left >= 2 && search && !given.bybox {
        let (radius, conversion) = radius_arg(&args[i + 1], &args[i + 2]).map_err(bytes_err)?;
        s.shape.conversion = conversion;
        s.shape.extent = Extent::Circle { radius };
        given.byradius = true;
        return Ok(2);
    } else if parse::kw(a, "bybox") && left >= 3 && search && !given.byradius {
        let (width, height, conversion) =
            box_arg(&args[i + 1], &args[i + 2], &args[i + 3]).map_err(bytes_err)?;
        s.shape.conversion = conversion;
        s.shape.extent = Extent::Box { width, height };
        given.bybox = true;
        return Ok(3);
    } else {
        return Err(bytes_err(err::SYNTAX));
    }
    Ok(0)
}

/// The checks after the options loop, in Redis's order.
fn check_search(args: &Args, form: Form, s: &Search, given: &Given) -> Result<(), Vec<u8>> {
    let search = matches!(form, Form::Search | Form::SearchStore);
    if s.store.is_some() && (s.withdist || s.withhash || s.withcoords) {
        let who = if form == Form::SearchStore {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(bytes_err(format!(
            "ERR {who} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    if search && !(given.frommember || given.fromloc) {
        let mut e = b"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for ".to_vec();
        e.extend_from_slice(c_str(&args[0]));
        return Err(e);
    }
    if search && !(given.byradius || given.bybox) {
        let mut e = b"ERR exactly one of BYRADIUS and BYBOX can be specified for ".to_vec();
        e.extend_from_slice(c_str(&args[0]));
        return Err(e);
    }
    if s.any && s.count == 0 {
        return Err(bytes_err("ERR the ANY argument requires COUNT argument"));
    }
    Ok(())
}

/// An argument as C's `%s` prints it: up to its first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or(b)
}

/// `geoGetPointsInRange` for one cell: the members scored in [min, max) inside the shape,
/// stopping once `limit` (0: none) points were found.
fn points_in_cell(z: &ZSet, hash: Bits, shape: &Shape, found: &mut Vec<Point>, limit: u64) {
    let min = geohash::align52(hash);
    let max = geohash::align52(Bits {
        bits: hash.bits.wrapping_add(1),
        step: hash.step,
    });
    let range = ScoreRange {
        min: min as f64,
        max: max as f64,
        minex: false,
        maxex: true,
    };
    let Some(first) = z.first_in_range(&range) else {
        return;
    };
    for (m, score) in z.iter_from(first, false) {
        if !range.lte_max(score) {
            break;
        }
        let xy = geohash::decode_score(score);
        if let Some(dist) = geohash::within(shape, xy) {
            found.push(Point {
                xy,
                dist,
                score,
                member: m.to_vec(),
            });
        }
        if !found.is_empty() && limit != 0 && found.len() as u64 >= limit {
            break;
        }
    }
}

/// `membersOfAllNeighbors`: the cells in order, skipping zeroed ones and a cell equal to the
/// one searched just before it (but never comparing with the centre cell, as Redis).
fn points_in_shape(z: &ZSet, shape: &Shape, limit: u64) -> Vec<Point> {
    let cells = geohash::search_cells(shape);
    let mut found = Vec::new();
    let mut last_processed = 0;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        if last_processed != 0 && *cell == cells[last_processed] {
            continue;
        }
        if !found.is_empty() && limit != 0 && found.len() as u64 >= limit {
            break;
        }
        points_in_cell(z, *cell, shape, &mut found, limit);
        last_processed = i;
    }
    found
}

/// Redis's comparators (`sort_gp_asc`, `sort_gp_desc`), NaN and all.
fn compare_dist(a: &Point, b: &Point, sort: Sort) -> i32 {
    let asc = if a.dist > b.dist {
        1
    } else if a.dist == b.dist {
        0
    } else {
        -1
    };
    if sort == Sort::Desc {
        -asc
    } else {
        asc
    }
}

/// glibc's `qsort` for this input: a top-down merge sort, stable, taking from the left run
/// while `cmp <= 0`.
fn merge_sort(v: &mut Vec<Point>, cmp: &impl Fn(&Point, &Point) -> i32) {
    if v.len() < 2 {
        return;
    }
    let mut right = v.split_off(v.len() / 2);
    merge_sort(v, cmp);
    merge_sort(&mut right, cmp);
    let left = std::mem::take(v);
    v.reserve(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    while let (Some(a), Some(b)) = (l.peek(), r.peek()) {
        let next = if cmp(a, b) <= 0 { l.next() } else { r.next() };
        v.extend(next);
    }
    v.extend(l);
    v.extend(r);
}

/// Redis's `pqsort` (BSD qsort from Bentley & McIlroy, recursing only into the parts that
/// overlap ranks `lrange..=rrange`): sorts those ranks into place, leaving ties in the order
/// this algorithm leaves them.
fn pqsort(v: &mut [Point], cmp: &impl Fn(&Point, &Point) -> i32, lrange: usize, rrange: usize) {
    let n = v.len();
    pqsort_rec(v, 0, n, cmp, lrange, rrange);
}

fn med3(v: &[Point], a: usize, b: usize, c: usize, cmp: &impl Fn(&Point, &Point) -> i32) -> usize {
    if cmp(&v[a], &v[b]) < 0 {
        if cmp(&v[b], &v[c]) < 0 {
            b
        } else if cmp(&v[a], &v[c]) < 0 {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) > 0 {
        b
    } else if cmp(&v[a], &v[c]) < 0 {
        a
    } else {
        c
    }
}

fn vecswap(v: &mut [Point], a: usize, b: usize, n: usize) {
    for k in 0..n {
        v.swap(a + k, b + k);
    }
}

/// Whether the sub-array `l..=r` holds any rank of `lrange..=rrange`.
fn overlaps(l: usize, r: usize, lrange: usize, rrange: usize) -> bool {
    !((lrange < l && rrange < l) || (lrange > r && rrange > r))
}

fn pqsort_rec(
    v: &mut [Point],
    mut base: usize,
    mut n: usize,
    cmp: &impl Fn(&Point, &Point) -> i32,
    lrange: usize,
    rrange: usize,
) {
    loop {
        if n < 7 {
            for pm in base + 1..base + n {
                let mut pl = pm;
                while pl > base && cmp(&v[pl - 1], &v[pl]) > 0 {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let pivot = choose_pivot(v, base, n, cmp);
        v.swap(base, pivot);
        let (pa, pb, pc, pd) = partition(v, base, n, cmp);
        let pn = base + n;
        let r = (pa - base).min(pb - pa);
        vecswap(v, base, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let r = pb - pa;
        if r > 1 && overlaps(base, base + r - 1, lrange, rrange) {
            pqsort_rec(v, base, r, cmp, lrange, rrange);
        }
        let r = pd - pc;
        if r > 1 {
            base = pn - r;
            n = r;
            if overlaps(base, base + r - 1, lrange, rrange) {
                continue;
            }
        }
        return;
    }
}

/// The median of three (of nine past 40 elements), as Bentley & McIlroy choose it.
fn choose_pivot(v: &[Point], base: usize, n: usize, cmp: &impl Fn(&Point, &Point) -> i32) -> usize {
    let mut pm = base + n / 2;
    if n > 7 {
        let mut pl = base;
        let mut pn = base + n - 1;
        if n > 40 {
            let d = n / 8;
            pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
            pm = med3(v, pm - d, pm, pm + d, cmp);
            pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
        }
        pm = med3(v, pl, pm, pn, cmp);
    }
    pm
}

/// The three-way partition around `v[base]`: equal keys gather at both ends (`base+1..pa`
/// and `pd+1..base+n`), smaller ones in `pa..pb`, larger ones in `pc+1..=pd`.
fn partition(
    v: &mut [Point],
    base: usize,
    n: usize,
    cmp: &impl Fn(&Point, &Point) -> i32,
) -> (usize, usize, usize, usize) {
    let (mut pa, mut pb) = (base + 1, base + 1);
    let (mut pc, mut pd) = (base + n - 1, base + n - 1);
    loop {
        while pb <= pc {
            let r = cmp(&v[pb], &v[base]);
            if r > 0 {
                break;
            }
            if r == 0 {
                v.swap(pa, pb);
                pa += 1;
            }
            pb += 1;
        }
        while pb <= pc {
            let r = cmp(&v[pc], &v[base]);
            if r < 0 {
                break;
            }
            if r == 0 {
                v.swap(pc, pd);
                pd -= 1;
            }
            pc -= 1;
        }
        if pb > pc {
            return (pa, pb, pc, pd);
        }
        v.swap(pb, pc);
        pb += 1;
        pc -= 1;
    }
}

/// The search commands (`georadiusGeneric`); `src` is the source key's argument index.
fn search(ks: &mut Keyspace, args: &Args, out: &mut Out, src: usize, form: Form) {
    let z = match read_zset(ks, &args[src]) {
        Err(WrongType) => return out.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    let s = match parse_search(args, z, form) {
        Ok(s) => s,
        Err(e) => return out.error_bytes(&e),
    };
    let Some(z) = z else {
        return match s.store {
            Some((dst, _)) => {
                let dst = &args[dst];
                if ks.remove(dst).is_some() {
                    ks.signal_modified(dst);
                    ks.notify('g', "del", dst);
                    ks.dirty(1);
                }
                out.int(0)
            }
            None => out.array(0),
        };
    };
    let mut sort = s.sort;
    if s.count != 0 && sort == Sort::None && !s.any {
        sort = Sort::Asc;
    }
    let limit = if s.any { s.count as u64 } else { 0 };
    let mut points = points_in_shape(z, &s.shape, limit);
    if points.is_empty() && s.store.is_none() {
        return out.array(0);
    }
    let returned = if s.count == 0 || (points.len() as u64) < s.count as u64 {
        points.len()
    } else {
        s.count as usize
    };
    if sort != Sort::None {
        let cmp = |a: &Point, b: &Point| compare_dist(a, b, sort);
        if returned == points.len() {
            merge_sort(&mut points, &cmp);
        } else {
            pqsort(&mut points, &cmp, 0, returned - 1);
        }
    }
    points.truncate(returned);
    for p in &mut points {
        p.dist /= s.shape.conversion;
    }
    match s.store {
        None => reply_points(out, &points, &s),
        Some((dst, storedist)) => {
            let dst = args[dst].clone();
            store_points(ks, &dst, points, storedist, form, out);
        }
    }
}

fn reply_points(out: &mut Out, points: &[Point], s: &Search) {
    let options = usize::from(s.withdist) + usize::from(s.withhash) + usize::from(s.withcoords);
    out.array(points.len());
    for p in points {
        if options > 0 {
            out.array(options + 1);
        }
        out.bulk(&p.member);
        if s.withdist {
            out.bulk(fmt_distance(p.dist).as_bytes());
        }
        if s.withhash {
            out.int(geohash_score_as_int(p.score));
        }
        if s.withcoords {
            out.array(2);
            reply_human(out, p.xy[0]);
            reply_human(out, p.xy[1]);
        }
    }
}

/// A score as C's `(long long)` conversion makes it on x86-64.
fn geohash_score_as_int(score: f64) -> i64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if score.is_nan() || !(-TWO63..TWO63).contains(&score) {
        i64::MIN
    } else {
        score as i64
    }
}

/// The STORE/STOREDIST path: a sorted set of the points (scores: geohashes, or distances in
/// the request's unit), or the destination deleted when nothing was found.
fn store_points(
    ks: &mut Keyspace,
    dst: &[u8],
    points: Vec<Point>,
    storedist: bool,
    form: Form,
    out: &mut Out,
) {
    let returned = points.len();
    if returned == 0 {
        if ks.remove(dst).is_some() {
            ks.signal_modified(dst);
            ks.notify('g', "del", dst);
            ks.dirty(1);
        }
        return out.int(0);
    }
    let mut seen = hashbrown::HashSet::with_capacity(returned);
    let mut pairs: Vec<(Vec<u8>, f64)> = points
        .into_iter()
        .filter(|p| seen.insert(p.member.clone()))
        .map(|p| {
            let score = if storedist { p.dist } else { p.score };
            (p.member, score)
        })
        .collect();
    pairs.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    ks.set(dst, Value::ZSet(ZSet::from_sorted(&pairs)));
    ks.signal_modified(dst);
    let event = if matches!(form, Form::Search | Form::SearchStore) {
        "geosearchstore"
    } else {
        "georadiusstore"
    };
    ks.notify('z', event, dst);
    ks.dirty(returned as u64);
    out.int(returned as i64);
}

fn georadius(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    search(ks, args, out, 1, Form::Radius { store: true });
}

fn georadius_ro(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    search(ks, args, out, 1, Form::Radius { store: false });
}

fn georadiusbymember(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    search(ks, args, out, 1, Form::ByMember { store: true });
}

fn georadiusbymember_ro(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    search(ks, args, out, 1, Form::ByMember { store: false });
}

fn geosearch(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    search(ks, args, out, 1, Form::Search);
}

fn geosearchstore(ks: &mut Keyspace, args: &Args, out: &mut Out) {
    search(ks, args, out, 2, Form::SearchStore);
}
