//! hookd's pure domain. Everything here is synchronous and free of I/O so that
//! the store, the queue, the server and the verifier can share one definition of
//! what an id, an endpoint, a signature or a retry schedule is.

pub mod filter;
pub mod ids;
pub mod model;
pub mod retry;
pub mod settings;
pub mod signing;
pub mod validate;

pub use ids::{id_bound_after, new_id, IdKind};
