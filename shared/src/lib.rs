//! Everything the stockroom functions share: the domain (plain Rust, no AWS types), the
//! ports the functions talk to and their DynamoDB/SQS adapters, idempotency, config,
//! telemetry and the one mapping from errors to RFC 9457 problem responses.

pub mod api;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod metrics;
pub mod openapi;
pub mod queue;
pub mod retry;
pub mod store;
pub mod telemetry;
pub mod usecases;

pub use clock::{Clock, SystemClock};
pub use config::Config;
pub use error::{Error, Result};
