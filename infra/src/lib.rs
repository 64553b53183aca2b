//! Runs stockroom on one machine: the emulator, the table and queues of `template.yaml`,
//! and every function's routes on one HTTP server.

pub mod emulator;
pub mod gateway;
pub mod openapi;
pub mod resources;
pub mod server;
pub mod tokens;

pub use emulator::Emulator;
pub use gateway::Gateway;
pub use resources::{Resources, TemplateResources};
pub use server::Functions;

use std::path::PathBuf;

/// The project's top folder (where `template.yaml` is); `STOCKROOM_ROOT` overrides.
pub fn project_root() -> PathBuf {
    std::env::var_os("STOCKROOM_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Setup(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Aws(String),
}

impl Error {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
