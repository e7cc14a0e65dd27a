//! Tests for the bit commands: pure helpers first, then scripts recorded from
//! redis-server 7.0.15 (see `string::tests` for the format).

use super::*;
use crate::commands::string::tests::Harness;

#[test]
fn offsets_parse_like_get_bit_offset_from_argument() {
    assert_eq!(bit_offset(b"0", None), Ok(0));
    assert_eq!(bit_offset(b"4294967295", None), Ok(4_294_967_295));
    assert_eq!(bit_offset(b"4294967296", None), Err(ERR_BIT_OFFSET));
    assert_eq!(bit_offset(b"-1", None), Err(ERR_BIT_OFFSET));
    assert_eq!(bit_offset(b"#1", None), Err(ERR_BIT_OFFSET));
    assert_eq!(bit_offset(b"#3", Some(8)), Ok(24));
    assert_eq!(bit_offset(b"#536870911", Some(8)), Ok(4_294_967_288));
    assert_eq!(bit_offset(b"#536870912", Some(8)), Err(ERR_BIT_OFFSET));
    // The product wraps before the range check, as in Redis: 2^61 * 8 = 2^64 = 0.
    assert_eq!(bit_offset(b"#2305843009213693952", Some(8)), Ok(0));
    assert_eq!(bit_offset(b"", None), Err(ERR_BIT_OFFSET));
}

#[test]
fn field_types() {
    assert_eq!(field_type(b"i64"), Ok((true, 64)));
    assert_eq!(field_type(b"u63"), Ok((false, 63)));
    assert_eq!(field_type(b"u1"), Ok((false, 1)));
    assert_eq!(field_type(b"i8\0junk"), Ok((true, 8)));
    for bad in [
        &b"u64"[..],
        b"i65",
        b"i0",
        b"I8",
        b"i",
        b"",
        b"i08",
        b"x8",
        b"i-1",
    ] {
        assert_eq!(field_type(bad), Err(ERR_BITFIELD_TYPE), "{bad:?}");
    }
}

#[test]
fn fields_read_and_write_across_bytes() {
    let mut buf = vec![0u8; 3];
    // Redis's own example: 23 as a 5-bit unsigned at offset 7 → 00000001 01110000.
    set_field(&mut buf, 7, 5, 23);
    assert_eq!(buf, [0b0000_0001, 0b0111_0000, 0]);
    assert_eq!(get_field(&buf, 7, 5), 23);
    assert_eq!(get_field(&buf, 20, 8), 0, "reads past the end are zeros");
    assert_eq!(sign_extend(get_field(&buf, 7, 5), 5), -9);
    let mut wide = vec![0u8; 9];
    set_field(&mut wide, 3, 64, u64::MAX);
    assert_eq!(sign_extend(get_field(&wide, 3, 64), 64), -1);
    assert_eq!(wide[0], 0b0001_1111);
    assert_eq!(wide[8], 0b1110_0000);
}

#[test]
fn unsigned_overflow_rules() {
    use Overflow::*;
    assert_eq!(fit_unsigned(3, 1, 2, Wrap), Some(0));
    assert_eq!(fit_unsigned(3, 1, 2, Sat), Some(3));
    assert_eq!(fit_unsigned(3, 1, 2, Fail), None);
    assert_eq!(fit_unsigned(1, -5, 2, Wrap), Some(0));
    assert_eq!(fit_unsigned(1, -5, 2, Sat), Some(0));
    assert_eq!(fit_unsigned(1, -5, 2, Fail), None);
    assert_eq!(fit_unsigned(2, -1, 2, Fail), Some(1));
    // A SET value out of range: -1 as u8 wraps to 255, saturates to 255.
    assert_eq!(fit_unsigned(u64::MAX, 0, 8, Wrap), Some(255));
    assert_eq!(fit_unsigned(u64::MAX, 0, 8, Sat), Some(255));
    assert_eq!(fit_unsigned(256, 0, 8, Wrap), Some(0));
    let max63 = i64::MAX as u64;
    assert_eq!(fit_unsigned(max63, 1, 63, Wrap), Some(0));
    assert_eq!(fit_unsigned(max63, 1, 63, Sat), Some(max63));
    assert_eq!(fit_unsigned(0, i64::MIN, 63, Sat), Some(0));
    assert_eq!(fit_unsigned(0, i64::MAX, 63, Fail), Some(max63));
}

#[test]
fn signed_overflow_rules() {
    use Overflow::*;
    assert_eq!(fit_signed(100, 100, 8, Wrap), Some(-56));
    assert_eq!(fit_signed(100, 100, 8, Sat), Some(127));
    assert_eq!(fit_signed(100, 100, 8, Fail), None);
    assert_eq!(fit_signed(-100, -100, 8, Wrap), Some(56));
    assert_eq!(fit_signed(-100, -100, 8, Sat), Some(-128));
    assert_eq!(fit_signed(200, 0, 8, Wrap), Some(-56));
    assert_eq!(fit_signed(-1000, 0, 8, Sat), Some(-128));
    assert_eq!(fit_signed(i64::MAX, 1, 64, Wrap), Some(i64::MIN));
    assert_eq!(fit_signed(i64::MAX, 1, 64, Sat), Some(i64::MAX));
    assert_eq!(fit_signed(i64::MIN, -1, 64, Fail), None);
    assert_eq!(fit_signed(-1, -i64::MAX, 64, Fail), Some(i64::MIN));
    assert_eq!(fit_signed(-2, -i64::MAX, 64, Sat), Some(i64::MIN));
    assert_eq!(fit_signed(5, i64::MIN, 64, Wrap), Some(i64::MIN + 5));
    assert_eq!(fit_signed(0, 1, 1, Wrap), Some(-1));
    assert_eq!(fit_signed(-1, 1, 1, Fail), Some(0));
}

/// Redis's "SETBIT/BITFIELD only increase dirty when the value changed" (unit/bitops.tcl).
#[test]
fn setbit_and_bitfield_count_only_changes() {
    let mut h = Harness::new(2);
    let mut dirty_after = |lines: &[&str]| {
        let before = h.dirty();
        for line in lines {
            h.cmd(line);
        }
        h.dirty() - before
    };
    assert_eq!(
        dirty_after(&["setbit foo 0 0", "bitfield foo2 set i5 0 0"]),
        2
    );
    assert_eq!(
        dirty_after(&["setbit foo 0 0", "bitfield foo2 set i5 0 0"]),
        0
    );
    let mixed = [
        "setbit foo 0 1",
        "setbit foo 0 1",
        "setbit foo 0 0",
        "setbit foo 0 0",
        "bitfield foo2 set i5 0 1",
        "bitfield foo2 set i5 0 1",
        "bitfield foo2 set i5 0 0",
        "bitfield foo2 set i5 0 0",
    ];
    assert_eq!(dirty_after(&mixed), 4);
    // INCRBY on a fresh key creates it; the second changes the value.
    assert_eq!(
        dirty_after(&["bitfield foo3 incrby i5 0 1", "bitfield foo3 incrby i5 0 1"]),
        2
    );
    // Growing the string is a change even when the bits written are zeros.
    assert_eq!(
        dirty_after(&["setbit foo 90 0", "bitfield foo2 set i5 90 0"]),
        2
    );
}

/// Redis's BITFIELD regressions #3221 and #3564 (unit/bitfield.tcl).
#[test]
fn bitfield_regressions() {
    let mut h = Harness::new(2);
    h.cmd("set bits 1");
    assert_eq!(h.cmd("bitfield bits get u1 0"), b"*1\r\n:0\r\n");
    for _ in 0..3 {
        h.cmd("del mystring");
        assert_eq!(
            h.cmd("bitfield mystring SET i8 0 10 SET i8 64 10 INCRBY i8 10 99900"),
            b"*3\r\n:0\r\n:0\r\n:60\r\n"
        );
    }
}

#[test]
fn counting_and_searching_bit_ranges() {
    let s = b"foobar";
    assert_eq!(popcount(s), 26);
    assert_eq!(count_bits(s, 0, 47), 26);
    assert_eq!(count_bits(s, 5, 30), 17);
    assert_eq!(count_bits(s, 9, 9), 1);
    assert_eq!(count_bits(&[0xff; 20], 3, 155), 153);
    let s = [0xff, 0xf0, 0x00];
    assert_eq!(find_bit(&s, 0, 23, false), Some(12));
    assert_eq!(find_bit(&s, 0, 23, true), Some(0));
    assert_eq!(find_bit(&s, 16, 23, true), None);
    assert_eq!(find_bit(&[0xff; 40], 0, 319, false), None);
    let mut long = [0u8; 40];
    long[37] = 0x02;
    assert_eq!(find_bit(&long, 3, 319, true), Some(37 * 8 + 6));
    assert_eq!(find_bit(&long, 3, 301, true), None);
}

#[test]
fn bits_basic() {
    Harness::new(2).script(&[
        (r#"setbit foo 7 1"#, b":0\r\n"),
        (r#"get foo"#, b"$1\r\n\x01\r\n"),
        (r#"setbit foo 7 1"#, b":1\r\n"),
        (r#"setbit foo 7 0"#, b":1\r\n"),
        (r#"getbit foo 7"#, b":0\r\n"),
        (r#"setbit foo 100 1"#, b":0\r\n"),
        (r#"strlen foo"#, b":13\r\n"),
        (r#"getbit foo 100"#, b":1\r\n"),
        (r#"getbit foo 99"#, b":0\r\n"),
        (r#"getbit foo 1000000"#, b":0\r\n"),
        (r#"getbit nokey 5"#, b":0\r\n"),
        (
            r#"setbit foo -1 1"#,
            b"-ERR bit offset is not an integer or out of range\r\n",
        ),
        (
            r#"setbit foo abc 1"#,
            b"-ERR bit offset is not an integer or out of range\r\n",
        ),
        (
            r#"setbit foo 4294967296 1"#,
            b"-ERR bit offset is not an integer or out of range\r\n",
        ),
        (
            r#"setbit foo 4294967295 2"#,
            b"-ERR bit is not an integer or out of range\r\n",
        ),
        (
            r#"setbit foo 1 2"#,
            b"-ERR bit is not an integer or out of range\r\n",
        ),
        (
            r#"setbit foo 1 -1"#,
            b"-ERR bit is not an integer or out of range\r\n",
        ),
        (
            r#"setbit foo 1 abc"#,
            b"-ERR bit is not an integer or out of range\r\n",
        ),
        (
            r#"setbit foo 1 01"#,
            b"-ERR bit is not an integer or out of range\r\n",
        ),
        (
            r#"getbit foo -1"#,
            b"-ERR bit offset is not an integer or out of range\r\n",
        ),
        (
            r#"getbit foo 4294967296"#,
            b"-ERR bit offset is not an integer or out of range\r\n",
        ),
        (
            r#"getbit foo abc"#,
            b"-ERR bit offset is not an integer or out of range\r\n",
        ),
        (r#"setbit bar 0 0"#, b":0\r\n"),
        (r#"get bar"#, b"$1\r\n\x00\r\n"),
        (r#"setbit bar 0 0"#, b":0\r\n"),
        (r#"set n 1"#, b"+OK\r\n"),
        (r#"getbit n 2"#, b":1\r\n"),
        (r#"getbit n 3"#, b":1\r\n"),
        (r#"setbit n 6 1"#, b":0\r\n"),
        (r#"get n"#, b"$1\r\n3\r\n"),
        (r#"setbit n 7 1"#, b":1\r\n"),
        (r#"get n"#, b"$1\r\n3\r\n"),
        (r#"incr n"#, b":4\r\n"),
    ]);
}

#[test]
fn bitcount() {
    Harness::new(2).script(&[
        (r#"set foo foobar"#, b"+OK\r\n"),
        (r#"bitcount foo"#, b":26\r\n"),
        (r#"bitcount foo 0 0"#, b":4\r\n"),
        (r#"bitcount foo 1 1"#, b":6\r\n"),
        (r#"bitcount foo 1 1 byte"#, b":6\r\n"),
        (r#"bitcount foo 5 30 bit"#, b":17\r\n"),
        (r#"bitcount foo 0 -1 bit"#, b":26\r\n"),
        (r#"bitcount foo -5 -1 bit"#, b":2\r\n"),
        (r#"bitcount foo 0"#, b"-ERR syntax error\r\n"),
        (r#"bitcount foo 0 1 2"#, b"-ERR syntax error\r\n"),
        (r#"bitcount foo 0 1 bits"#, b"-ERR syntax error\r\n"),
        (
            r#"bitcount foo a b"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (
            r#"bitcount foo 0 b"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (r#"bitcount foo -1 -5"#, b":0\r\n"),
        (r#"bitcount foo -1 -5 bogus"#, b":0\r\n"),
        (
            r#"bitcount foo 1 a bogus"#,
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (r#"bitcount foo 100 200"#, b":0\r\n"),
        (r#"bitcount foo 2 1"#, b":0\r\n"),
        (r#"bitcount foo -100 -1"#, b":26\r\n"),
        (r#"bitcount foo 7 7 bit"#, b":0\r\n"),
        (r#"bitcount foo 1 6 bit"#, b":4\r\n"),
        (r#"bitcount foo 9 9 bit"#, b":1\r\n"),
        (r#"bitcount nokey"#, b":0\r\n"),
        (r#"bitcount nokey 0"#, b":0\r\n"),
        (r#"bitcount nokey a b c d"#, b":0\r\n"),
        (r#"set n 12345"#, b"+OK\r\n"),
        (r#"bitcount n"#, b":17\r\n"),
        (r#"bitcount n 1 2"#, b":7\r\n"),
        (r#"set e """#, b"+OK\r\n"),
        (r#"bitcount e"#, b":0\r\n"),
        (r#"bitcount e 0 -1"#, b":0\r\n"),
        (r#"bitcount e 0 -1 bit"#, b":0\r\n"),
    ]);
}

#[test]
fn bitpos() {
    Harness::new(2).script(&[
        (r#"set foo "\xff\xf0\x00""#, b"+OK\r\n"),
        (r#"bitpos foo 0"#, b":12\r\n"),
        (r#"bitpos foo 1"#, b":0\r\n"),
        (r#"bitpos foo 1 2"#, b":-1\r\n"),
        (r#"bitpos foo 0 1"#, b":12\r\n"),
        (r#"bitpos foo 0 1 -1"#, b":12\r\n"),
        (r#"bitpos foo 1 2 -1"#, b":-1\r\n"),
        (r#"bitpos foo 0 0 0"#, b":-1\r\n"),
        (r#"bitpos foo 0 2 -1 byte"#, b":16\r\n"),
        (r#"bitpos foo 1 7 15 bit"#, b":7\r\n"),
        (r#"bitpos foo 0 7 15 bit"#, b":12\r\n"),
        (r#"bitpos foo 0 0 11 bit"#, b":-1\r\n"),
        (r#"bitpos foo 0 0 12 bit"#, b":12\r\n"),
        (r#"bitpos foo 1 16 -1 bit"#, b":-1\r\n"),
        (r#"bitpos foo 0 3 -1"#, b":-1\r\n"),
        (r#"bitpos foo 2"#, b"-ERR The bit argument must be 1 or 0.\r\n"),
        (r#"bitpos foo -1"#, b"-ERR The bit argument must be 1 or 0.\r\n"),
        (r#"bitpos foo a"#, b"-ERR value is not an integer or out of range\r\n"),
        (r#"bitpos foo 1 a"#, b"-ERR value is not an integer or out of range\r\n"),
        (r#"bitpos foo 1 0 a"#, b"-ERR value is not an integer or out of range\r\n"),
        (r#"bitpos foo 1 0 1 bogus"#, b"-ERR syntax error\r\n"),
        (r#"bitpos foo 1 a 1 bogus"#, b"-ERR value is not an integer or out of range\r\n"),
        (r#"bitpos foo 1 0 a bogus"#, b"-ERR syntax error\r\n"),
        (r#"bitpos foo 1 0 1 bit extra"#, b"-ERR syntax error\r\n"),
        (r#"bitpos nokey 0"#, b":0\r\n"),
        (r#"bitpos nokey 1"#, b":-1\r\n"),
        (r#"bitpos nokey 1 a b c d e"#, b":-1\r\n"),
        (r#"bitpos nokey 2"#, b"-ERR The bit argument must be 1 or 0.\r\n"),
        (r#"set ones "\xff\xff\xff""#, b"+OK\r\n"),
        (r#"bitpos ones 0"#, b":24\r\n"),
        (r#"bitpos ones 0 0"#, b":24\r\n"),
        (r#"bitpos ones 0 0 -1"#, b":-1\r\n"),
        (r#"bitpos ones 0 0 -1 bit"#, b":-1\r\n"),
        (r#"bitpos ones 1 -1"#, b":16\r\n"),
        (r#"bitpos ones 0 1 0"#, b":-1\r\n"),
        (r#"set zeros "\x00\x00\x00""#, b"+OK\r\n"),
        (r#"bitpos zeros 1"#, b":-1\r\n"),
        (r#"bitpos zeros 0 1"#, b":8\r\n"),
        (r#"bitpos zeros 1 2 -1 bit"#, b":-1\r\n"),
        (r#"set e """#, b"+OK\r\n"),
        (r#"bitpos e 0"#, b":-1\r\n"),
        (r#"bitpos e 1"#, b":-1\r\n"),
        (r#"bitpos e 0 0"#, b":-1\r\n"),
        (r#"set mid "\x00\x01\x00\xff""#, b"+OK\r\n"),
        (r#"bitpos mid 1 3 20 bit"#, b":15\r\n"),
        (r#"bitpos mid 1 -20 -1 bit"#, b":15\r\n"),
        (r#"bitpos mid 0 24 31 bit"#, b":-1\r\n"),
        (r#"bitpos mid 0 24 -1 bit"#, b":-1\r\n"),
        (r#"bitpos mid 0 23 31 bit"#, b":23\r\n"),
        (r#"set n 1"#, b"+OK\r\n"),
        (r#"bitpos n 1"#, b":2\r\n"),
        (r#"bitpos n 0"#, b":0\r\n"),
        (r#"set long "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe""#, b"+OK\r\n"),
        (r#"bitpos long 0"#, b":151\r\n"),
        (r#"bitpos long 0 3 -2"#, b":-1\r\n"),
        (r#"bitpos long 0 3"#, b":151\r\n"),
    ]);
}

#[test]
fn bitop() {
    Harness::new(2).script(&[
        (r#"set a "\x0f\xf0\xaa""#, b"+OK\r\n"),
        (r#"set b "\xff\x0f""#, b"+OK\r\n"),
        (r#"bitop and dest a b"#, b":3\r\n"),
        (r#"get dest"#, b"$3\r\n\x0f\x00\x00\r\n"),
        (r#"bitop or dest a b"#, b":3\r\n"),
        (r#"get dest"#, b"$3\r\n\xff\xff\xaa\r\n"),
        (r#"bitop xor dest a b"#, b":3\r\n"),
        (r#"get dest"#, b"$3\r\n\xf0\xff\xaa\r\n"),
        (r#"bitop not dest a"#, b":3\r\n"),
        (r#"get dest"#, b"$3\r\n\xf0\x0fU\r\n"),
        (
            r#"bitop not dest a b"#,
            b"-ERR BITOP NOT must be called with a single source key.\r\n",
        ),
        (r#"bitop nand dest a b"#, b"-ERR syntax error\r\n"),
        (r#"bitop and dest nokey1 nokey2"#, b":0\r\n"),
        (r#"exists dest"#, b":0\r\n"),
        (r#"bitop and dest nokey a"#, b":3\r\n"),
        (r#"get dest"#, b"$3\r\n\x00\x00\x00\r\n"),
        (r#"bitop or dest nokey a"#, b":3\r\n"),
        (r#"get dest"#, b"$3\r\n\x0f\xf0\xaa\r\n"),
        (r#"bitop xor dest a a b"#, b":3\r\n"),
        (r#"get dest"#, b"$3\r\n\xff\x0f\x00\r\n"),
        (r#"bitop and dest a"#, b":3\r\n"),
        (r#"get dest"#, b"$3\r\n\x0f\xf0\xaa\r\n"),
        (r#"bitop or dest e1 e2"#, b":0\r\n"),
        (r#"set n 12"#, b"+OK\r\n"),
        (r#"bitop not dest n"#, b":2\r\n"),
        (r#"get dest"#, b"$2\r\n\xce\xcd\r\n"),
        (r#"bitop AnD dest a b"#, b":3\r\n"),
        (r#"set e """#, b"+OK\r\n"),
        (r#"bitop and dest e"#, b":0\r\n"),
        (r#"exists dest"#, b":0\r\n"),
    ]);
}

#[test]
fn bitfield() {
    Harness::new(2).script(&[
        (r#"bitfield bf set i8 0 100"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf get i8 0"#, b"*1\r\n:100\r\n"),
        (r#"bitfield bf incrby i8 0 100"#, b"*1\r\n:-56\r\n"),
        (r#"bitfield bf overflow sat incrby i8 0 100"#, b"*1\r\n:44\r\n"),
        (r#"bitfield bf overflow sat incrby i8 0 -1000"#, b"*1\r\n:-128\r\n"),
        (r#"bitfield bf overflow fail incrby i8 0 -1"#, b"*1\r\n$-1\r\n"),
        (r#"bitfield bf overflow fail incrby i8 0 1000 get i8 0"#, b"*2\r\n$-1\r\n:-128\r\n"),
        (r#"bitfield bf set u8 0 255 get u8 0"#, b"*2\r\n:128\r\n:255\r\n"),
        (r#"bitfield bf set u8 0 256"#, b"*1\r\n:255\r\n"),
        (r#"bitfield bf overflow sat set u8 0 256"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf overflow fail set u8 0 256"#, b"*1\r\n$-1\r\n"),
        (r#"bitfield bf set u8 0 -1"#, b"*1\r\n:255\r\n"),
        (r#"bitfield bf overflow sat set u8 0 -1"#, b"*1\r\n:255\r\n"),
        (r#"bitfield bf overflow fail set u8 0 -1"#, b"*1\r\n$-1\r\n"),
        (r#"bitfield bf get u8 0"#, b"*1\r\n:255\r\n"),
        (r#"bitfield bf incrby u2 100 1 overflow sat incrby u2 102 1"#, b"*2\r\n:1\r\n:1\r\n"),
        (r#"bitfield bf incrby u2 100 1 overflow sat incrby u2 102 1"#, b"*2\r\n:2\r\n:2\r\n"),
        (r#"bitfield bf incrby u2 100 1 overflow sat incrby u2 102 1"#, b"*2\r\n:3\r\n:3\r\n"),
        (r#"bitfield bf incrby u2 100 1 overflow sat incrby u2 102 1"#, b"*2\r\n:0\r\n:3\r\n"),
        (r#"bitfield bf overflow wrap incrby u2 100 -5"#, b"*1\r\n:3\r\n"),
        (r#"bitfield bf overflow sat incrby u2 100 -5"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf set i64 0 -1"#, b"*1\r\n:-72057594037927936\r\n"),
        (r#"bitfield bf get i64 0 get u63 0 get u63 1"#, b"*3\r\n:-1\r\n:9223372036854775807\r\n:9223372036854775807\r\n"),
        (r#"bitfield bf incrby i64 0 -9223372036854775807"#, b"*1\r\n:-9223372036854775808\r\n"),
        (r#"bitfield bf incrby i64 0 -9223372036854775807"#, b"*1\r\n:1\r\n"),
        (r#"bitfield bf overflow sat incrby i64 0 -9223372036854775807"#, b"*1\r\n:-9223372036854775806\r\n"),
        (r#"bitfield bf overflow fail incrby i64 0 -1"#, b"*1\r\n:-9223372036854775807\r\n"),
        (r#"bitfield bf set i64 0 9223372036854775807"#, b"*1\r\n:-9223372036854775807\r\n"),
        (r#"bitfield bf incrby i64 0 1"#, b"*1\r\n:-9223372036854775808\r\n"),
        (r#"bitfield bf overflow sat set i64 0 9223372036854775807 incrby i64 0 1"#, b"*2\r\n:-9223372036854775808\r\n:9223372036854775807\r\n"),
        (r#"bitfield bf overflow fail incrby i64 0 1"#, b"*1\r\n$-1\r\n"),
        (r#"bitfield bf set u63 0 9223372036854775807"#, b"*1\r\n:4611686018427387903\r\n"),
        (r#"bitfield bf incrby u63 0 1"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf set u63 0 9223372036854775807"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf overflow sat incrby u63 0 1"#, b"*1\r\n:9223372036854775807\r\n"),
        (r#"bitfield bf overflow fail incrby u63 0 -9223372036854775807 incrby u63 0 1"#, b"*2\r\n:0\r\n:1\r\n"),
        (r#"bitfield bf set i5 #2 3 get i5 #2 get u15 0"#, b"*3\r\n:0\r\n:3\r\n:3\r\n"),
        (r#"bitfield bf get i8 #0 get i8 #1"#, b"*2\r\n:0\r\n:6\r\n"),
        (r#"bitfield bf get u64 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get i65 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get u0 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get I8 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get x8 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get i 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get i08 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get "i8\x00zz" 0"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf get i8 -1"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf get i8 #-1"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf get i8 4294967296"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf get i8 4294967288"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf get i8 #536870911"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf get i8 #536870912"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf get i8 #2305843009213693952"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf get u8 #1152921504606846977"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf get i8 abc"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf set i8 0 abc"#, b"-ERR value is not an integer or out of range\r\n"),
        (r#"bitfield bf set i8 0"#, b"-ERR syntax error\r\n"),
        (r#"bitfield bf get i8"#, b"-ERR syntax error\r\n"),
        (r#"bitfield bf overflow"#, b"-ERR syntax error\r\n"),
        (r#"bitfield bf overflow bogus get i8 0"#, b"-ERR Invalid OVERFLOW type specified\r\n"),
        (r#"bitfield bf bogus"#, b"-ERR syntax error\r\n"),
        (r#"bitfield bf"#, b"*0\r\n"),
        (r#"bitfield nokey get i8 0 get u4 4"#, b"*2\r\n:0\r\n:0\r\n"),
        (r#"exists nokey"#, b":0\r\n"),
        (r#"bitfield nokey2"#, b"*0\r\n"),
        (r#"exists nokey2"#, b":0\r\n"),
        (r#"bitfield new set u8 0 0"#, b"*1\r\n:0\r\n"),
        (r#"get new"#, b"$1\r\n\x00\r\n"),
        (r#"bitfield new2 set u4 12 5"#, b"*1\r\n:0\r\n"),
        (r#"strlen new2"#, b":2\r\n"),
        (r#"bitfield new2 set u4 12 5"#, b"*1\r\n:5\r\n"),
        (r#"set str hello"#, b"+OK\r\n"),
        (r#"bitfield str get u8 0 get u8 8 get i16 0 get u8 32 get u8 40 get u64 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield str incrby u8 0 1 get u8 0"#, b"*2\r\n:105\r\n:105\r\n"),
        (r#"get str"#, b"$5\r\niello\r\n"),
        (r#"set n 12"#, b"+OK\r\n"),
        (r#"bitfield n get u8 0 get u8 8"#, b"*2\r\n:49\r\n:50\r\n"),
        (r#"bitfield n set u8 0 51"#, b"*1\r\n:49\r\n"),
        (r#"get n"#, b"$2\r\n32\r\n"),
        (r#"bitfield_ro n get u8 0"#, b"*1\r\n:51\r\n"),
        (r#"bitfield_ro n set u8 0 1"#, b"-ERR BITFIELD_RO only supports the GET subcommand\r\n"),
        (r#"bitfield_ro n incrby u8 0 1"#, b"-ERR BITFIELD_RO only supports the GET subcommand\r\n"),
        (r#"bitfield_ro n overflow sat get u8 0"#, b"*1\r\n:51\r\n"),
        (r#"bitfield_ro n set u8 0 abc"#, b"-ERR value is not an integer or out of range\r\n"),
        (r#"bitfield_ro nokey get i8 0"#, b"*1\r\n:0\r\n"),
        (r#"bitfield_ro n"#, b"*0\r\n"),
        (r#"bitfield bf get i8 0 overflow sat get i8 0"#, b"*2\r\n:0\r\n:0\r\n"),
        (r#"bitfield bf set i8 0 1 set i8 0 1"#, b"*2\r\n:0\r\n:1\r\n"),
        (r#"bitfield bf overflow fail set i8 0 200 get i8 0"#, b"*2\r\n$-1\r\n:1\r\n"),
    ]);
}

#[test]
fn bitfield_resp3() {
    Harness::new(3).script(&[
        (r#"bitfield bf set i8 0 100"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf get i8 0"#, b"*1\r\n:100\r\n"),
        (r#"bitfield bf incrby i8 0 100"#, b"*1\r\n:-56\r\n"),
        (r#"bitfield bf overflow sat incrby i8 0 100"#, b"*1\r\n:44\r\n"),
        (r#"bitfield bf overflow sat incrby i8 0 -1000"#, b"*1\r\n:-128\r\n"),
        (r#"bitfield bf overflow fail incrby i8 0 -1"#, b"*1\r\n_\r\n"),
        (r#"bitfield bf overflow fail incrby i8 0 1000 get i8 0"#, b"*2\r\n_\r\n:-128\r\n"),
        (r#"bitfield bf set u8 0 255 get u8 0"#, b"*2\r\n:128\r\n:255\r\n"),
        (r#"bitfield bf set u8 0 256"#, b"*1\r\n:255\r\n"),
        (r#"bitfield bf overflow sat set u8 0 256"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf overflow fail set u8 0 256"#, b"*1\r\n_\r\n"),
        (r#"bitfield bf set u8 0 -1"#, b"*1\r\n:255\r\n"),
        (r#"bitfield bf overflow sat set u8 0 -1"#, b"*1\r\n:255\r\n"),
        (r#"bitfield bf overflow fail set u8 0 -1"#, b"*1\r\n_\r\n"),
        (r#"bitfield bf get u8 0"#, b"*1\r\n:255\r\n"),
        (r#"bitfield bf incrby u2 100 1 overflow sat incrby u2 102 1"#, b"*2\r\n:1\r\n:1\r\n"),
        (r#"bitfield bf incrby u2 100 1 overflow sat incrby u2 102 1"#, b"*2\r\n:2\r\n:2\r\n"),
        (r#"bitfield bf incrby u2 100 1 overflow sat incrby u2 102 1"#, b"*2\r\n:3\r\n:3\r\n"),
        (r#"bitfield bf incrby u2 100 1 overflow sat incrby u2 102 1"#, b"*2\r\n:0\r\n:3\r\n"),
        (r#"bitfield bf overflow wrap incrby u2 100 -5"#, b"*1\r\n:3\r\n"),
        (r#"bitfield bf overflow sat incrby u2 100 -5"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf set i64 0 -1"#, b"*1\r\n:-72057594037927936\r\n"),
        (r#"bitfield bf get i64 0 get u63 0 get u63 1"#, b"*3\r\n:-1\r\n:9223372036854775807\r\n:9223372036854775807\r\n"),
        (r#"bitfield bf incrby i64 0 -9223372036854775807"#, b"*1\r\n:-9223372036854775808\r\n"),
        (r#"bitfield bf incrby i64 0 -9223372036854775807"#, b"*1\r\n:1\r\n"),
        (r#"bitfield bf overflow sat incrby i64 0 -9223372036854775807"#, b"*1\r\n:-9223372036854775806\r\n"),
        (r#"bitfield bf overflow fail incrby i64 0 -1"#, b"*1\r\n:-9223372036854775807\r\n"),
        (r#"bitfield bf set i64 0 9223372036854775807"#, b"*1\r\n:-9223372036854775807\r\n"),
        (r#"bitfield bf incrby i64 0 1"#, b"*1\r\n:-9223372036854775808\r\n"),
        (r#"bitfield bf overflow sat set i64 0 9223372036854775807 incrby i64 0 1"#, b"*2\r\n:-9223372036854775808\r\n:9223372036854775807\r\n"),
        (r#"bitfield bf overflow fail incrby i64 0 1"#, b"*1\r\n_\r\n"),
        (r#"bitfield bf set u63 0 9223372036854775807"#, b"*1\r\n:4611686018427387903\r\n"),
        (r#"bitfield bf incrby u63 0 1"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf set u63 0 9223372036854775807"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf overflow sat incrby u63 0 1"#, b"*1\r\n:9223372036854775807\r\n"),
        (r#"bitfield bf overflow fail incrby u63 0 -9223372036854775807 incrby u63 0 1"#, b"*2\r\n:0\r\n:1\r\n"),
        (r#"bitfield bf set i5 #2 3 get i5 #2 get u15 0"#, b"*3\r\n:0\r\n:3\r\n:3\r\n"),
        (r#"bitfield bf get i8 #0 get i8 #1"#, b"*2\r\n:0\r\n:6\r\n"),
        (r#"bitfield bf get u64 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get i65 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get u0 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get I8 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get x8 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get i 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get i08 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield bf get "i8\x00zz" 0"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf get i8 -1"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf get i8 #-1"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf get i8 4294967296"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf get i8 4294967288"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf get i8 #536870911"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf get i8 #536870912"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf get i8 #2305843009213693952"#, b"*1\r\n:0\r\n"),
        (r#"bitfield bf get u8 #1152921504606846977"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf get i8 abc"#, b"-ERR bit offset is not an integer or out of range\r\n"),
        (r#"bitfield bf set i8 0 abc"#, b"-ERR value is not an integer or out of range\r\n"),
        (r#"bitfield bf set i8 0"#, b"-ERR syntax error\r\n"),
        (r#"bitfield bf get i8"#, b"-ERR syntax error\r\n"),
        (r#"bitfield bf overflow"#, b"-ERR syntax error\r\n"),
        (r#"bitfield bf overflow bogus get i8 0"#, b"-ERR Invalid OVERFLOW type specified\r\n"),
        (r#"bitfield bf bogus"#, b"-ERR syntax error\r\n"),
        (r#"bitfield bf"#, b"*0\r\n"),
        (r#"bitfield nokey get i8 0 get u4 4"#, b"*2\r\n:0\r\n:0\r\n"),
        (r#"exists nokey"#, b":0\r\n"),
        (r#"bitfield nokey2"#, b"*0\r\n"),
        (r#"exists nokey2"#, b":0\r\n"),
        (r#"bitfield new set u8 0 0"#, b"*1\r\n:0\r\n"),
        (r#"get new"#, b"$1\r\n\x00\r\n"),
        (r#"bitfield new2 set u4 12 5"#, b"*1\r\n:0\r\n"),
        (r#"strlen new2"#, b":2\r\n"),
        (r#"bitfield new2 set u4 12 5"#, b"*1\r\n:5\r\n"),
        (r#"set str hello"#, b"+OK\r\n"),
        (r#"bitfield str get u8 0 get u8 8 get i16 0 get u8 32 get u8 40 get u64 0"#, b"-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"),
        (r#"bitfield str incrby u8 0 1 get u8 0"#, b"*2\r\n:105\r\n:105\r\n"),
        (r#"get str"#, b"$5\r\niello\r\n"),
        (r#"set n 12"#, b"+OK\r\n"),
        (r#"bitfield n get u8 0 get u8 8"#, b"*2\r\n:49\r\n:50\r\n"),
        (r#"bitfield n set u8 0 51"#, b"*1\r\n:49\r\n"),
        (r#"get n"#, b"$2\r\n32\r\n"),
        (r#"bitfield_ro n get u8 0"#, b"*1\r\n:51\r\n"),
        (r#"bitfield_ro n set u8 0 1"#, b"-ERR BITFIELD_RO only supports the GET subcommand\r\n"),
        (r#"bitfield_ro n incrby u8 0 1"#, b"-ERR BITFIELD_RO only supports the GET subcommand\r\n"),
        (r#"bitfield_ro n overflow sat get u8 0"#, b"*1\r\n:51\r\n"),
        (r#"bitfield_ro n set u8 0 abc"#, b"-ERR value is not an integer or out of range\r\n"),
        (r#"bitfield_ro nokey get i8 0"#, b"*1\r\n:0\r\n"),
        (r#"bitfield_ro n"#, b"*0\r\n"),
        (r#"bitfield bf get i8 0 overflow sat get i8 0"#, b"*2\r\n:0\r\n:0\r\n"),
        (r#"bitfield bf set i8 0 1 set i8 0 1"#, b"*2\r\n:0\r\n:1\r\n"),
        (r#"bitfield bf overflow fail set i8 0 200 get i8 0"#, b"*2\r\n_\r\n:1\r\n"),
    ]);
}
