//! The client side of RESP: encoding commands and finding where one reply ends (RESP2 and
//! RESP3, including nested aggregates and attributes), without building values.

/// A reply's outcome, enough for a benchmark: fine, an error (with its text, for MOVED/ASK),
/// or an out-of-band push (not a reply to any request).
#[derive(Debug, PartialEq)]
pub enum Reply {
    Ok,
    Error(String),
    Push,
}

/// Nesting bound: a server sending deeper replies is treated as broken.
const DEPTH_MAX: usize = 64;

pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let nl = memchr::memchr(b'\n', rest)?;
    if nl == 0 || rest[nl - 1] != b'\r' {
        return None;
    }
    Some((&rest[..nl - 1], at + nl + 1))
}

fn int(s: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad length '{}'", String::from_utf8_lossy(s)))
}

/// Parses one reply at `at`. `Ok(None)`: incomplete; `Ok(Some((end, reply)))`; `Err`: the
/// stream is not RESP.
pub fn parse(buf: &[u8], at: usize) -> Result<Option<(usize, Reply)>, String> {
    parse_depth(buf, at, 0)
}

fn parse_depth(buf: &[u8], at: usize, depth: usize) -> Result<Option<(usize, Reply)>, String> {
    if depth > DEPTH_MAX {
        return Err("reply nested too deeply".into());
    }
    let Some(&tag) = buf.get(at) else {
        return Ok(None);
    };
    let Some((body, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    match tag {
        b'+' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some((next, Reply::Ok))),
        b'-' => Ok(Some((
            next,
            Reply::Error(String::from_utf8_lossy(body).into_owned()),
        ))),
        b'$' | b'=' | b'!' => {
            let n = int(body)?;
            if n < 0 {
                return Ok(Some((next, Reply::Ok)));
            }
            let end = next + n as usize + 2;
            if buf.len() < end {
                return Ok(None);
            }
            if tag == b'!' {
                let text = String::from_utf8_lossy(&buf[next..end - 2]).into_owned();
                return Ok(Some((end, Reply::Error(text))));
            }
            Ok(Some((end, Reply::Ok)))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = int(body)?;
            if n < 0 {
                return Ok(Some((next, Reply::Ok)));
            }
            let items = if tag == b'%' || tag == b'|' { n * 2 } else { n };
            let mut pos = next;
            for _ in 0..items {
                match parse_depth(buf, pos, depth + 1)? {
                    Some((end, _)) => pos = end,
                    None => return Ok(None),
                }
            }
            match tag {
                // An attribute precedes the reply it describes.
                b'|' => parse_depth(buf, pos, depth + 1),
                b'>' => Ok(Some((pos, Reply::Push))),
                _ => Ok(Some((pos, Reply::Ok))),
            }
        }
        _ => Err(format!("unexpected reply byte 0x{:02x}", tag)),
    }
}

/// A simple value tree, for the few replies the client reads (CLUSTER SLOTS, INFO).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Vec<u8>),
    Int(i64),
    Arr(Vec<Value>),
    Nil,
    Err(String),
}

pub fn parse_value(buf: &[u8], at: usize) -> Result<Option<(usize, Value)>, String> {
    let Some(&tag) = buf.get(at) else {
        return Ok(None);
    };
    let Some((body, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    match tag {
        b'+' => Ok(Some((next, Value::Str(body.to_vec())))),
        b'-' => Ok(Some((
            next,
            Value::Err(String::from_utf8_lossy(body).into_owned()),
        ))),
        b':' => Ok(Some((next, Value::Int(int(body)?)))),
        b'_' => Ok(Some((next, Value::Nil))),
        b'$' | b'=' | b'!' => {
            let n = int(body)?;
            if n < 0 {
                return Ok(Some((next, Value::Nil)));
            }
            let end = next + n as usize + 2;
            if buf.len() < end {
                return Ok(None);
            }
            Ok(Some((end, Value::Str(buf[next..end - 2].to_vec()))))
        }
        b'*' | b'~' | b'%' => {
            let n = int(body)?;
            if n < 0 {
                return Ok(Some((next, Value::Nil)));
            }
            let n = if tag == b'%' { n * 2 } else { n };
            let mut pos = next;
            let mut items = Vec::new();
            for _ in 0..n {
                match parse_value(buf, pos)? {
                    Some((end, v)) => {
                        pos = end;
                        items.push(v);
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((pos, Value::Arr(items))))
        }
        _ => match parse(buf, at)? {
            Some((end, _)) => Ok(Some((end, Value::Nil))),
            None => Ok(None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_reply_ends() {
        let b = b"+OK\r\n$3\r\nabc\r\n*2\r\n:1\r\n$-1\r\n-MOVED 1 h:1\r\n";
        let (e1, r1) = parse(b, 0).unwrap().unwrap();
        assert_eq!((e1, r1), (5, Reply::Ok));
        let (e2, _) = parse(b, e1).unwrap().unwrap();
        let (e3, _) = parse(b, e2).unwrap().unwrap();
        let (e4, r4) = parse(b, e3).unwrap().unwrap();
        assert_eq!(e4, b.len());
        assert_eq!(r4, Reply::Error("MOVED 1 h:1".into()));
        assert_eq!(parse(b"$3\r\nab", 0).unwrap(), None);
        assert_eq!(parse(b"*2\r\n:1\r\n", 0).unwrap(), None);
        assert!(parse(b"?x\r\n", 0).is_err());
    }

    #[test]
    fn resp3_maps_attributes_and_pushes() {
        let b = b"%1\r\n+a\r\n:1\r\n|1\r\n+k\r\n+v\r\n,1.5\r\n>2\r\n+x\r\n+y\r\n";
        let (e1, _) = parse(b, 0).unwrap().unwrap();
        let (e2, r2) = parse(b, e1).unwrap().unwrap();
        assert_eq!(r2, Reply::Ok);
        let (e3, r3) = parse(b, e2).unwrap().unwrap();
        assert_eq!((e3, r3), (b.len(), Reply::Push));
    }
}
