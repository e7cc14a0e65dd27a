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
