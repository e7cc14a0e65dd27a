//! Listening sockets: one per shard and bind address, all with SO_REUSEPORT so the kernel
//! spreads new connections over the shards.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;

/// A bind address from config: `*` (any IPv4), `::*` (any IPv6), an address; a leading `-`
/// makes it optional (skipped if unavailable), as in Redis.
pub fn parse_bind(spec: &str) -> (Option<IpAddr>, bool) {
    let (optional, s) = match spec.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, spec),
    };
    let ip = match s {
        "*" => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        "::*" => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        other => other.parse().ok(),
    };
    (ip, optional)
}

/// Fails with `EADDRINUSE` when another process listens on `addr`.
///
/// The shards' listeners share the port through SO_REUSEPORT, and the kernel lets any socket
/// of the same user with that option join the group: a second server started on a busy port
/// would silently take half the connections instead of failing as Redis does ("Address
/// already in use"). A socket without SO_REUSEPORT cannot bind a port such a group holds, so
/// binding one first (and closing it) detects the other server.
pub fn probe(addr: SocketAddr) -> io::Result<()> {
    let fd = bind_socket(addr, false)?;
    // SAFETY: `fd` was created by `bind_socket` and is ours to close.
    unsafe { libc::close(fd) };
    Ok(())
}

/// Creates a nonblocking, listening, SO_REUSEPORT socket.
pub fn listen(addr: SocketAddr, backlog: i32) -> io::Result<RawFd> {
    let fd = bind_socket(addr, true)?;
    // SAFETY: `fd` is a bound socket we own; closed on failure.
    unsafe {
        if libc::listen(fd, backlog) < 0 {
            let e = io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
    }
    Ok(fd)
}

/// A nonblocking stream socket bound to `addr` (SO_REUSEADDR, and SO_REUSEPORT if asked).
fn bind_socket(addr: SocketAddr, reuseport: bool) -> io::Result<RawFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket syscalls on a descriptor we create and own; sockaddr structs are
    // fully initialized before use and their sizes passed correctly.
    unsafe {
        let fd = libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        let sz = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let p = &one as *const libc::c_int as *const libc::c_void;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, p, sz);
        if reuseport {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, p, sz);
        }
        let rc = match addr {
            SocketAddr::V4(a) => {
                let mut sin: libc::sockaddr_in = std::mem::zeroed();
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                libc::bind(
                    fd,
                    &sin as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            }
            SocketAddr::V6(a) => {
                libc::setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, p, sz);
                let mut sin6: libc::sockaddr_in6 = std::mem::zeroed();
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                libc::bind(
                    fd,
                    &sin6 as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            }
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}

/// Creates the nonblocking, listening Unix domain socket at `path` (`unixsocket`), removing a
/// stale file first as Redis does, and applying `perm` (`unixsocketperm`, 0 = leave the umask's
/// mode). One socket serves every shard: each adds it to its accept set and the kernel hands
/// each connection to one of them.
pub fn listen_unix(path: &str, perm: u32, backlog: i32) -> io::Result<RawFd> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = std::ffi::OsStr::new(path).as_bytes();
    // SAFETY: `sockaddr_un` is plain data; zeroed is a valid value.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.is_empty() || bytes.len() >= sun.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &s) in sun.sun_path.iter_mut().zip(bytes) {
        *d = s as libc::c_char;
    }
    let _ = std::fs::remove_file(path);
    // SAFETY: plain socket syscalls on a descriptor we create and own; `sun` is initialized
    // and its size passed; the path is NUL-terminated (zeroed tail).
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let failed = libc::bind(fd, &sun as *const _ as *const libc::sockaddr, len) < 0
            || (perm != 0 && libc::chmod(sun.sun_path.as_ptr(), perm as libc::mode_t) < 0)
            || libc::listen(fd, backlog) < 0;
        if failed {
            let e = io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}
