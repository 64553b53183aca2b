//! Logs: JSON when running in Lambda, readable text everywhere else; `RUST_LOG` sets
//! the level. In Lambda every line lists its spans: the runtime's (`requestId`,
//! `xrayTraceId`) and the handler's (`idempotency_key`, method, path).

use tracing_subscriber::{fmt, EnvFilter};

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let result = if in_lambda {
        fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(false)
            .with_span_list(true)
            .flatten_event(true)
            .without_time()
            .with_target(false)
            .try_init()
    } else {
        fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
    // A second init (tests, the local server) keeps the first subscriber.
    drop(result);
}
