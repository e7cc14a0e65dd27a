//! The io_uring backend (under construction).
