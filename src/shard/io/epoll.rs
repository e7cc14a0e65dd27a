//! The epoll backend (under construction).
