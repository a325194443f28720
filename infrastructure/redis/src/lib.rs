//! ordermon's Redis adapters: the Redis Streams message bus ([`bus`]).

pub mod bus;
pub mod cache;
