//! Interop with a real redis-server.
