//! ordermon's Redis adapters: the Redis Streams message bus ([`bus`]), the
//! shared cache tier ([`cache`]), and the clients both build from a `redis://`
//! or `rediss://` URL ([`tls`]).

pub mod bus;
pub mod cache;
pub mod tls;
