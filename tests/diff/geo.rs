//! Geo commands (`geo.c` in Redis), which keep points as sorted-set members scored by their
//! 52-bit geohash: GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS and
//! GEORADIUSBYMEMBER (and their `_RO` forms).
//!
//! Points lie around Sicily, with random low digits so that no two members share a point: a
//! search without ASC/DESC returns them in the order its geohash boxes are walked, and one
//! sorted by distance must not depend on how a sort breaks ties. Now and then coordinates are
//! out of range or not numbers. Searches cover every shape, unit and option, with radii from a
//! few metres to hundreds of kilometres, and stores (STORE, STOREDIST, GEOSEARCHSTORE) write
//! sorted sets that the other commands then read. Geo commands also meet plain sorted sets,
//! whose scores need not be valid geohashes.

use super::{Args, Cmd, Gen, GenFn, KeySet};

/// The geo family's own names: `{g}` keys share a shard, `geo:*` spread.
pub const KEYS: KeySet = KeySet {
    names: &[b"{g}a", b"{g}b", b"{g}c", b"geo:1", b"geo:2"],
    tagged: 3,
};

/// Where stores mostly write, so that they do not keep emptying the sets searched.
const STORE_KEYS: KeySet = KeySet {
    names: &[b"{g}out", b"geo:out"],
    tagged: 1,
};

/// One weighted generator per command.
const COMMANDS: &[(u32, GenFn)] = &[
    (2, del),
    (2, encoding),
    (10, geoadd),
    (3, geopos),
    (3, geodist),
    (2, geohash),
    (6, geosearch),
    (2, geosearchstore),
    (3, georadius),
    (2, georadiusbymember),
];

pub fn generate(g: &mut Gen) -> Cmd {
    let command = *g.rng.weighted(COMMANDS);
    command(g)
}

fn del(g: &mut Gen) -> Cmd {
    g.del_in(&KEYS)
}

fn encoding(g: &mut Gen) -> Cmd {
    g.encoding_in(&KEYS)
}

fn member(g: &mut Gen) -> Vec<u8> {
    if g.rng.chance(1, 20) {
        return g.value();
    }
    g.rng
        .pick(&[
            &b"Palermo"[..],
            b"Catania",
            b"Messina",
            b"Siracusa",
            b"Trapani",
            b"Enna",
            b"Ragusa",
            b"Agrigento",
            b"",
        ])
        .to_vec()
}

/// A coordinate in `lo..hi` degrees with random low digits.
fn degrees(g: &mut Gen, lo: i64, hi: i64) -> Vec<u8> {
    let micro = g.rng.range(lo * 1_000_000, hi * 1_000_000);
    let sign = if micro < 0 { "-" } else { "" };
    let micro = micro.unsigned_abs();
    format!(
        "{sign}{}.{:06}{}",
        micro / 1_000_000,
        micro % 1_000_000,
        g.rng.below(1000)
    )
    .into_bytes()
}

/// A longitude/latitude pair: mostly around Sicily, sometimes anywhere valid, now and then
/// out of range or not a number.
fn lon_lat(g: &mut Gen) -> [Vec<u8>; 2] {
    match g.rng.below(20) {
        0 => [degrees(g, -180, 179), degrees(g, -85, 84)],
        1 => [
            g.rng
                .pick(&[&b"181"[..], b"-180.5", b"0", b"abc", b"inf"])
                .to_vec(),
            g.rng
                .pick(&[&b"85.06"[..], b"-90", b"0", b"", b"nan"])
                .to_vec(),
        ],
        _ => [degrees(g, 12, 15), degrees(g, 36, 38)],
    }
}

/// GEOADD key [NX|XX] [CH] longitude latitude member [...], sometimes one argument short.
fn geoadd(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let mut args = g.c("GEOADD").arg(key);
    for option in ["NX", "XX", "CH"] {
        if g.rng.chance(1, 10) {
            args = args.arg(option);
        }
    }
    for _ in 0..g.count(4) {
        let [lon, lat] = lon_lat(g);
        args = args.arg(lon).arg(lat).arg(member(g));
    }
    if g.rng.chance(1, 25) {
        args = args.arg("12.5");
    }
    args.exact()
}

fn members(g: &mut Gen) -> Vec<Vec<u8>> {
    let n = g.count(4);
    (0..n).map(|_| member(g)).collect()
}

fn geopos(g: &mut Gen) -> Cmd {
    let (key, ms) = (g.key_in(&KEYS), members(g));
    g.c("GEOPOS").arg(key).args(ms).exact()
}

fn geohash(g: &mut Gen) -> Cmd {
    let (key, ms) = (g.key_in(&KEYS), members(g));
    g.c("GEOHASH").arg(key).args(ms).exact()
}

/// A distance unit, in either case, or now and then one Redis refuses.
fn unit(g: &mut Gen) -> &'static str {
    if g.rng.chance(1, 25) {
        g.rng.pick::<&str>(&["yd", "", "kms"])
    } else {
        g.rng.pick::<&str>(&["m", "km", "mi", "ft", "KM", "M"])
    }
}

/// GEODIST key member1 member2 [unit].
fn geodist(g: &mut Gen) -> Cmd {
    let (key, m1, m2) = (g.key_in(&KEYS), member(g), member(g));
    let args = g.c("GEODIST").arg(key).arg(m1).arg(m2);
    if g.rng.chance(2, 3) {
        args.arg(unit(g)).exact()
    } else {
        args.exact()
    }
}

/// A radius or box side: metres to hundreds of kilometres in the unit that follows, or one
/// Redis refuses (negative, not a number).
fn distance(g: &mut Gen) -> Vec<u8> {
    match g.rng.below(20) {
        0 => g.rng.pick(&[&b"-1"[..], b"abc", b"0", b"nan"]).to_vec(),
        1..=6 => g.rng.range(1, 500).to_string().into_bytes(),
        _ => format!("{}.{}", g.rng.range(0, 300), g.rng.range(0, 9)).into_bytes(),
    }
}

/// The options shared by the searches: [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT n [ANY]]
/// [ASC|DESC], in any order, valid or not.
fn search_options(g: &mut Gen, mut args: Args, with: bool) -> Args {
    let mut options: Vec<Vec<&str>> = Vec::new();
    if with {
        for option in ["WITHCOORD", "WITHDIST", "WITHHASH"] {
            if g.rng.chance(1, 3) {
                options.push(vec![option]);
            }
        }
    }
    if g.rng.chance(1, 3) {
        let count = if g.rng.chance(1, 10) {
            *g.rng.pick(&["0", "-1", "x"])
        } else {
            *g.rng.pick(&["1", "2", "3", "5", "10"])
        };
        let mut option = vec!["COUNT", count];
        if g.rng.chance(1, 3) {
            option.push("ANY");
        }
        options.push(option);
    }
    if g.rng.chance(1, 2) {
        options.push(vec![*g.rng.pick(&["ASC", "DESC", "asc"])]);
    }
    if g.rng.chance(1, 30) {
        options.push(vec![*g.rng.pick(&["ANY", "BOGUS", "COUNT"])]);
    }
    for i in (1..options.len()).rev() {
        let j = g.rng.index(i + 1);
        options.swap(i, j);
    }
    for option in options {
        args = args.args(option);
    }
    args
}

/// FROMMEMBER member | FROMLONLAT lon lat, then BYRADIUS r unit | BYBOX w h unit; now and then
/// both origins, or none.
fn search_shape(g: &mut Gen, mut args: Args) -> Args {
    let from = g.rng.below(12);
    if from < 6 || from == 11 {
        args = args.arg("FROMMEMBER").arg(member(g));
    }
    if (6..11).contains(&from) || from == 11 {
        let [lon, lat] = lon_lat(g);
        args = args.arg("FROMLONLAT").arg(lon).arg(lat);
    }
    match g.rng.below(12) {
        0..=6 => args.arg("BYRADIUS").arg(distance(g)).arg(unit(g)),
        7..=10 => args
            .arg("BYBOX")
            .arg(distance(g))
            .arg(distance(g))
            .arg(unit(g)),
        _ => args,
    }
}

/// GEOSEARCH key FROMMEMBER|FROMLONLAT ... BYRADIUS|BYBOX ... [options].
fn geosearch(g: &mut Gen) -> Cmd {
    let key = g.key_in(&KEYS);
    let args = g.c("GEOSEARCH").arg(key);
    let args = search_shape(g, args);
    search_options(g, args, true).exact()
}

/// A destination of a store: mostly one of `STORE_KEYS`, sometimes a searched key.
fn store_key(g: &mut Gen) -> Vec<u8> {
    if g.rng.chance(3, 4) {
        g.key_in(&STORE_KEYS)
    } else {
        g.key_in(&KEYS)
    }
}

/// GEOSEARCHSTORE destination source ... [STOREDIST].
fn geosearchstore(g: &mut Gen) -> Cmd {
    let (dest, src) = (store_key(g), g.key_in(&KEYS));
    let args = g.c("GEOSEARCHSTORE").arg(dest).arg(src);
    let args = search_shape(g, args);
    let with = g.rng.chance(1, 10);
    let args = search_options(g, args, with);
    if g.rng.chance(1, 3) {
        args.arg("STOREDIST").exact()
    } else {
        args.exact()
    }
}

/// STORE key or STOREDIST key for GEORADIUS and GEORADIUSBYMEMBER (not their `_RO` forms,
/// which refuse them), sometimes.
fn radius_store(g: &mut Gen, args: Args, read_only: bool) -> Args {
    if read_only || g.rng.chance(2, 3) {
        return args;
    }
    let option = *g.rng.pick(&["STORE", "STOREDIST"]);
    let dest = store_key(g);
    args.arg(option).arg(dest)
}

/// GEORADIUS[_RO] key longitude latitude radius unit [options] [STORE|STOREDIST key].
fn georadius(g: &mut Gen) -> Cmd {
    let read_only = g.rng.chance(1, 3);
    let name = if read_only {
        "GEORADIUS_RO"
    } else {
        "GEORADIUS"
    };
    let key = g.key_in(&KEYS);
    let [lon, lat] = lon_lat(g);
    let args = g
        .c(name)
        .arg(key)
        .arg(lon)
        .arg(lat)
        .arg(distance(g))
        .arg(unit(g));
    let args = search_options(g, args, true);
    radius_store(g, args, read_only).exact()
}

/// GEORADIUSBYMEMBER[_RO] key member radius unit [options] [STORE|STOREDIST key].
fn georadiusbymember(g: &mut Gen) -> Cmd {
    let read_only = g.rng.chance(1, 3);
    let name = if read_only {
        "GEORADIUSBYMEMBER_RO"
    } else {
        "GEORADIUSBYMEMBER"
    };
    let (key, m) = (g.key_in(&KEYS), member(g));
    let args = g.c(name).arg(key).arg(m).arg(distance(g)).arg(unit(g));
    let args = search_options(g, args, true);
    radius_store(g, args, read_only).exact()
}
