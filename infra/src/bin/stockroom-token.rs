//! `stockroom-token customer ID | staff ID | admin [--ttl SECONDS]`: prints a bearer token
//! the running local run accepts (what `./infra/token` runs).

use std::fs::{File, TryLockError};

use clap::{Parser, Subcommand};
use stockroom_local::tokens::{self, SigningKey, TokenKind};

#[derive(Parser)]
#[command(about = "Prints a bearer token the running local run (./infra/run-local) accepts")]
struct Args {
    #[command(subcommand)]
    kind: Kind,
    /// How long the token stays valid, in seconds.
    #[arg(long, global = true, default_value_t = tokens::DEFAULT_TTL_SECONDS)]
    ttl: u64,
}

#[derive(Subcommand)]
enum Kind {
    /// A customer's token: the customer routes, for this customer only.
    Customer { id: String },
    /// A staff member's token: the customer routes, for any customer.
    Staff { id: String },
    /// A back-office token: the stock admin routes (IAM in AWS).
    Admin,
}

fn main() {
    let args = Args::parse();
    match token(&args) {
        Ok(token) => println!("{token}"),
        Err(message) => {
            eprintln!("stockroom-token: {message}");
            std::process::exit(1);
        }
    }
}

fn token(args: &Args) -> Result<String, String> {
    let not_running = "no stockroom local run is running: start ./infra/run-local first";
    // The local run holds this lock while it runs; its key is only good while it does.
    let lock = stockroom_local::project_root()
        .join(".stockroom")
        .join("local.lock");
    match File::open(&lock).map(|file| file.try_lock()) {
        Err(_) | Ok(Ok(())) => return Err(not_running.into()),
        Ok(Err(TryLockError::WouldBlock)) => {}
        Ok(Err(TryLockError::Error(e))) => return Err(format!("{}: {e}", lock.display())),
    }
    let key = SigningKey::load(&SigningKey::path()).map_err(|e| format!("{e} ({not_running})"))?;
    let (kind, subject) = match &args.kind {
        Kind::Customer { id } => (TokenKind::Customer, id.as_str()),
        Kind::Staff { id } => (TokenKind::Staff, id.as_str()),
        Kind::Admin => (TokenKind::Admin, "admin"),
    };
    if subject.is_empty() {
        return Err("the id must not be empty".into());
    }
    tokens::mint(&key, kind, subject, args.ttl).map_err(|e| e.to_string())
}
