//! `stockroom-local`: the whole system on one machine, no AWS account, no Docker.
//!
//! Starts the emulator on 127.0.0.1, creates the table and queues `template.yaml`
//! declares, and serves every route at `http://127.0.0.1:$STOCKROOM_PORT` (3000).
//! Ctrl-C stops everything it started.

use std::fs::{File, TryLockError};
use std::sync::Arc;

use std::time::Duration;

use reconcile::Settings;
use stockroom::queue::SqsQueue;
use stockroom::{config, telemetry, Config, SystemClock};
use stockroom_local::server::Wiring;
use stockroom_local::tokens::SigningKey;
use stockroom_local::{project_root, server, Emulator, Functions, Gateway, TemplateResources};

const TABLE: &str = "stockroom";

fn port(name: &str, default: u16) -> Result<u16, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}={v} is not a port number")),
        Err(_) => Ok(default),
    }
}

fn main() {
    if let Err(message) = run() {
        eprintln!("stockroom-local: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    telemetry::init();
    let http_port = port("STOCKROOM_PORT", 3000)?;
    let emulator_port = port("STOCKROOM_EMULATOR_PORT", 4567)?;
    let sweep_every = match std::env::var("STOCKROOM_SWEEP_SECONDS") {
        Ok(v) => v.parse::<u64>().ok().filter(|s| *s > 0).ok_or(format!(
            "STOCKROOM_SWEEP_SECONDS={v} is not a positive number"
        ))?,
        Err(_) => server::SWEEP_EVERY.as_secs(),
    };

    // One local run at a time: the lock is released when this process ends, however it ends.
    let state = project_root().join(".stockroom");
    std::fs::create_dir_all(&state).map_err(|e| format!("creating {}: {e}", state.display()))?;
    let lock = File::create(state.join("local.lock")).map_err(|e| format!("lock file: {e}"))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(
                "another stockroom local run is already running; stop it first (Ctrl-C)".into(),
            )
        }
        Err(TryLockError::Error(e)) => return Err(format!("lock file: {e}")),
    }
    let listener = std::net::TcpListener::bind(("127.0.0.1", http_port)).map_err(|e| {
        format!("cannot listen on 127.0.0.1:{http_port} ({e}); set STOCKROOM_PORT to another port")
    })?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;

    // The functions find the emulator the standard way. Set before any thread starts.
    let endpoint = format!("http://127.0.0.1:{emulator_port}");
    std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
    for (name, value) in [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
    ] {
        if std::env::var_os(name).is_none() {
            std::env::set_var(name, value);
        }
    }

    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let sweep_every = Duration::from_secs(sweep_every);
    runtime.block_on(serve(listener, emulator_port, endpoint, sweep_every))
}

async fn serve(
    listener: std::net::TcpListener,
    emulator_port: u16,
    endpoint: String,
    sweep_every: Duration,
) -> Result<(), String> {
    let template = TemplateResources::load().map_err(|e| e.to_string())?;
    let _emulator = Emulator::start(emulator_port)
        .await
        .map_err(|e| e.to_string())?;
    let aws = config::aws();
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let resources = template
        .create(&dynamodb, &sqs, TABLE)
        .await
        .map_err(|e| e.to_string())?;
    let config = Config {
        table: resources.table.clone(),
        queue_url: resources.compensation_queue().map(str::to_owned),
    };
    let queue_url = config
        .queue_url
        .clone()
        .ok_or("template.yaml declares no CompensationQueue")?;
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let functions = Arc::new(Functions::new(Wiring {
        aws: &aws,
        config: &config,
        clock: Arc::new(SystemClock),
        settings,
        queue: &|queue: SqsQueue| Arc::new(queue),
    }));
    // Reconcile's two triggers, as Lambda would fire them.
    tokio::spawn(server::pump_queue(functions.clone(), queue_url));
    tokio::spawn(server::schedule(functions.clone(), sweep_every));
    // A fresh signing key each run, written where `./infra/token` reads it.
    let key = SigningKey::generate();
    let key_file = SigningKey::path();
    key.save(&key_file).map_err(|e| e.to_string())?;
    let gateway = Gateway::new(key);
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(emulator = %endpoint, table = %config.table, queues = ?resources.queue_urls, "emulator ready");
    println!(
        "stockroom is serving http://{address} (emulator at {endpoint}, sweep every {}s); Ctrl-C stops it",
        sweep_every.as_secs()
    );
    axum::serve(listener, server::app(functions, &gateway))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())?;
    // Tokens signed with this run's key are of no use once it is gone.
    let _ = std::fs::remove_file(&key_file);
    println!("stockroom stopped");
    Ok(())
}
