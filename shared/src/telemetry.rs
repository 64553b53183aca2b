//! Logs: JSON when running in Lambda, readable text everywhere else; `RUST_LOG` sets
//! the level. In Lambda every line lists its spans: the runtime's (`requestId`,
//! `xrayTraceId`) and the handler's (`idempotency_key`, method, path).

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{fmt, EnvFilter};

/// The Lambda log format: one JSON object per line, with every enclosing span's fields.
pub fn lambda_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(true)
        .flatten_event(true)
        .without_time()
        .with_target(false)
        .with_writer(writer)
        .finish()
}

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let result = if in_lambda {
        tracing::subscriber::set_global_default(lambda_subscriber(filter, std::io::stdout))
            .map_err(|e| e.to_string())
    } else {
        fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
            .map_err(|e| e.to_string())
    };
    // A second init (tests, the local server) keeps the first subscriber.
    drop(result);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lambda_lines_carry_request_id_trace_id_and_idempotency_key() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = lambda_subscriber(EnvFilter::new("info"), move || sink.clone());
        tracing::subscriber::with_default(subscriber, || {
            // The span lambda_runtime opens per invocation, then the handler's.
            let invoke = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "req-1",
                xrayTraceId = "Root=1-abc"
            );
            let _invoke = invoke.enter();
            let request = tracing::info_span!("request", idempotency_key = "key-7");
            let _request = request.enter();
            tracing::info!(reservation_id = "res_1", "reserved");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["message"], "reserved");
        assert_eq!(line["reservation_id"], "res_1");
        assert_eq!(line["spans"][0]["requestId"], "req-1");
        assert_eq!(line["spans"][0]["xrayTraceId"], "Root=1-abc");
        assert_eq!(line["spans"][1]["idempotency_key"], "key-7");
    }
}
