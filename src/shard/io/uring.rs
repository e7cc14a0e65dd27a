//! Placeholder until the uring backend lands.
use super::{Event, Io, Token};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;
pub struct Uring;
impl Uring {
    pub fn new(_entries: u32) -> io::Result<Uring> {
        Err(io::Error::other("not yet"))
    }
}
impl Io for Uring {
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
