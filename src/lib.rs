//! libscylla_shard: a shard-aware, tablet-aware ScyllaDB / Cassandra driver.
//!
//! Layers (see DESIGN.md): `protocol` (pure CQL v4 codec) and `routing`
//! (tokens, sharding, replicas). The emulator in `emulator/` reuses the
//! protocol codec so both directions are checked by the real drivers.

#[cfg(feature = "mimalloc")]
mod alloc;
pub mod cluster;
pub mod connection;
pub mod ffi;
pub mod pool;
pub mod protocol;
pub mod routing;
pub mod runtime;
pub mod session;
