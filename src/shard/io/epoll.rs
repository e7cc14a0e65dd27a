//! Placeholder until the epoll backend lands.
use super::{Event, Io, Token};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;
pub struct Epoll;
impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        Err(io::Error::other("not yet"))
    }
}
impl Io for Epoll {
    fn describe(&self) -> String {
        String::new()
    }
    fn add_listener(&mut self, _fd: RawFd) -> io::Result<()> {
        Ok(())
    }
    fn add_conn(&mut self, _t: Token, _fd: RawFd) -> io::Result<()> {
        Ok(())
    }
    fn send(&mut self, _t: Token, _d: Vec<u8>) {}
    fn close(&mut self, _t: Token) {}
    fn set_wake_fd(&mut self, _fd: RawFd) -> io::Result<()> {
        Ok(())
    }
    fn poll(&mut self, _t: Option<Duration>, _h: &mut dyn FnMut(Event<'_>)) -> io::Result<()> {
        Ok(())
    }
}
