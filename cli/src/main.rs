//! `stockroom`: the operator's command line (README "Operator CLI").

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stockroom_cli::ops::{self, AuditReport};
use stockroom_cli::rehearse::{self, Rehearsal, Report};
use stockroom_cli::watch::{self, Watched};
use stockroom_cli::{
    campaign_put, campaign_show, import, read_rows, Api, CampaignTerms, CliError, Exit,
    ImportSummary,
};

#[derive(Debug, Parser)]
#[command(name = "stockroom", version, about = "Run a sale on stockroom")]
struct Cli {
    /// The API's base URL: the local run's, or a deployed stack's `ApiUrl` output.
    #[arg(
        long,
        env = "STOCKROOM_API",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    api: String,
    /// A bearer token for the admin routes (for the local run: `./infra/token admin`).
    /// Without one, calls to a deployed stack are signed with SigV4 using the standard
    /// AWS credential chain (environment, profile, SSO cache, role).
    #[arg(long, env = "STOCKROOM_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Print the result as JSON, for scripts; no progress bar.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Skus and their stock.
    Stock {
        #[command(subcommand)]
        command: StockCommand,
    },
    /// Flash-sale campaigns.
    Campaign {
        #[command(subcommand)]
        command: CampaignCommand,
    },
    /// A sale while it runs.
    Sale {
        #[command(subcommand)]
        command: SaleCommand,
    },
    /// Runs reconcile's audit of every sku now (read-only) and prints the drift, if any.
    Audit {
        #[command(flatten)]
        stack: StackArgs,
    },
    /// The compensation dead-letter queue.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Moves dead-lettered commands back to the compensation queue, where reconcile
    /// applies each once. Fix what made them fail first.
    Redrive {
        #[command(flatten)]
        stack: StackArgs,
        /// Messages to move at most.
        #[arg(long, default_value_t = ops::REDRIVE_MAX, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        max: u32,
    },
}

/// Where the stack's table and queues are: its outputs, for a deployed stack; for the
/// local run (a loopback --api) they default to the local run's own.
#[derive(Debug, clap::Args)]
struct StackArgs {
    /// The stack's `TableName` output.
    #[arg(long, env = "STOCKROOM_TABLE")]
    table: Option<String>,
    /// The stack's `CompensationQueueUrl` output.
    #[arg(long, env = "STOCKROOM_QUEUE_URL")]
    queue_url: Option<String>,
    /// The stack's `CompensationDeadLetterQueueUrl` output.
    #[arg(long, env = "STOCKROOM_DEAD_LETTER_QUEUE_URL")]
    dead_letter_queue_url: Option<String>,
}

impl StackArgs {
    /// `given`, else the local run's `local`, else what to pass.
    fn pick(given: &Option<String>, local: Option<&str>, flag: &str) -> Result<String, CliError> {
        given.clone().or(local.map(str::to_owned)).ok_or_else(|| {
            CliError::BadInput(format!("pass --{flag}: the stack's output of that name"))
        })
    }

    fn table(&self, api: &Api) -> Result<String, CliError> {
        let local = api.is_local().then_some(ops::LOCAL_TABLE);
        Self::pick(&self.table, local, "table")
    }

    async fn queue_url(
        given: &Option<String>,
        api: &Api,
        sqs: &aws_sdk_sqs::Client,
        local: &str,
        flag: &str,
    ) -> Result<String, CliError> {
        match (given, api.is_local()) {
            (None, true) => ops::queue_url(sqs, local).await,
            _ => Self::pick(given, None, flag),
        }
    }
}

#[derive(Debug, Subcommand)]
enum SaleCommand {
    /// A live view of a campaign's skus, or of skus by name, redrawn every second:
    /// stock, rates, refusals by code, time to sell-out. `q` or Ctrl-C quits.
    #[command(group(ArgGroup::new("watched").required(true).args(["skus", "campaign"])))]
    Watch {
        /// Skus to watch.
        skus: Vec<String>,
        /// Watch this campaign's skus.
        #[arg(long, conflicts_with = "skus")]
        campaign: Option<String>,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=60))]
        every: u64,
    },
    /// A bounded flash sale against the local run: buyers reserve at a steady rate, then
    /// order, release or keep their holds; a report of successes, refusals by code and
    /// latency, and every sku's books checked at the end.
    Rehearse {
        /// A sku on sale; repeat for each. Each must exist.
        #[arg(long = "sku", required = true)]
        skus: Vec<String>,
        /// Reserve under this campaign.
        #[arg(long)]
        campaign: Option<String>,
        /// Distinct customers (buyer-1 .. buyer-N).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        buyers: u32,
        /// Reservations started per second.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        rate: u32,
        /// Seconds the sale runs.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
        duration: u64,
        /// Fixes every buyer's choices: one seed, the same sale.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Units per reservation, from 1 to this.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
        max_quantity: u32,
        /// A staff token, which acts for every buyer (`./infra/token staff rehearsal`).
        #[arg(long, env = "STOCKROOM_BUYER_TOKEN", hide_env_values = true)]
        buyer_token: String,
    },
}

#[derive(Debug, Subcommand)]
enum CampaignCommand {
    /// Creates or replaces a campaign: its skus, window and per-customer limit.
    Put {
        id: String,
        /// A sku on offer; repeat for each.
        #[arg(long = "sku", required = true)]
        skus: Vec<String>,
        /// RFC 3339, e.g. 2026-11-11T00:00:00Z.
        #[arg(long)]
        starts_at: String,
        #[arg(long)]
        ends_at: String,
        /// Units one customer may hold plus have bought in the campaign.
        #[arg(long)]
        limit: u32,
    },
    /// Prints a campaign.
    Show { id: String },
}

#[derive(Debug, Subcommand)]
enum StockCommand {
    /// Makes every row's sku hold its on_hand (and shards): columns sku,on_hand[,shards].
    /// Rows already as the file says are left alone, so a second run changes nothing and
    /// an interrupted run can simply be started again.
    Import {
        file: PathBuf,
        /// Rows in flight at once.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match admin_api(&cli).await {
        Ok(api) => run(cli, api).await,
        Err(e) => Err(e),
    };
    let exit = outcome.unwrap_or_else(|e| {
        eprintln!("stockroom: {e}");
        e.exit()
    });
    ExitCode::from(exit as u8)
}

/// The admin API: with the bearer token when given; else, for a deployed stack, signed
/// with the operator's AWS credentials.
async fn admin_api(cli: &Cli) -> Result<Api, CliError> {
    if cli.token.is_some() {
        return Ok(Api::new(&cli.api, cli.token.clone()));
    }
    let anonymous = Api::new(&cli.api, None);
    if anonymous.is_local() {
        return Ok(anonymous);
    }
    let aws = ops::sdk_config(false).await;
    let region = stockroom_cli::api::region_of(&cli.api)
        .or_else(|| aws.region().map(ToString::to_string))
        .ok_or_else(|| {
            CliError::BadInput(format!(
                "{} is not an API Gateway URL and no AWS region is set: set AWS_REGION",
                cli.api
            ))
        })?;
    let credentials = aws.credentials_provider().ok_or_else(|| CliError::Aws {
        what: "finding AWS credentials to sign with".into(),
        cause: "the standard chain has none".into(),
    })?;
    Ok(Api::signed(&cli.api, credentials, region))
}

async fn run(cli: Cli, api: Api) -> Result<Exit, CliError> {
    match cli.command {
        Command::Stock {
            command: StockCommand::Import { file, concurrency },
        } => stock_import(&api, &file, usize::from(concurrency), cli.json)
            .await
            .map(|summary| {
                report(&summary, cli.json);
                summary.exit()
            }),
        Command::Campaign { command } => {
            let campaign = match command {
                CampaignCommand::Put {
                    id,
                    skus,
                    starts_at,
                    ends_at,
                    limit,
                } => {
                    let terms = CampaignTerms {
                        skus,
                        starts_at,
                        ends_at,
                        per_customer_limit: limit,
                    };
                    campaign_put(&api, &id, &terms).await
                }
                CampaignCommand::Show { id } => campaign_show(&api, &id).await,
            };
            campaign.map(|campaign| {
                print_json(&campaign, cli.json);
                Exit::Done
            })
        }
        Command::Sale {
            command:
                SaleCommand::Watch {
                    skus,
                    campaign,
                    every,
                },
        } => {
            let watched = match campaign {
                Some(id) => Watched::Campaign(id),
                None => Watched::Skus(skus),
            };
            sale_watch(&api, &watched, Duration::from_secs(every), cli.json).await
        }
        Command::Sale {
            command:
                SaleCommand::Rehearse {
                    skus,
                    campaign,
                    buyers,
                    rate,
                    duration,
                    seed,
                    max_quantity,
                    buyer_token,
                },
        } => {
            let rehearsal = Rehearsal {
                skus,
                campaign,
                buyers,
                rate,
                duration: Duration::from_secs(duration),
                seed,
                max_quantity,
            };
            let buyers = Api::new(&cli.api, Some(buyer_token));
            sale_rehearse(&api, &buyers, &rehearsal, cli.json).await
        }
        Command::Audit { stack } => audit(&api, &stack, cli.json).await,
        Command::Dlq {
            command: DlqCommand::Redrive { stack, max },
        } => redrive(&api, &stack, max, cli.json).await,
    }
}

fn print_json(value: &serde_json::Value, compact: bool) {
    let text = match compact {
        true => serde_json::to_string(value),
        false => serde_json::to_string_pretty(value),
    };
    println!("{}", text.unwrap_or_default());
}

async fn stock_import(
    api: &Api,
    file: &PathBuf,
    concurrency: usize,
    json: bool,
) -> Result<ImportSummary, CliError> {
    let input = std::fs::File::open(file)
        .map_err(|e| CliError::BadInput(format!("cannot read {}: {e}", file.display())))?;
    let (rows, refused) = read_rows(input)?;
    let bar = progress_bar(rows.len() as u64, json, "rows");
    let summary = import(api, rows, refused, concurrency, || bar.inc(1)).await;
    bar.finish_and_clear();
    summary
}

fn report(summary: &ImportSummary, json: bool) {
    if json {
        println!("{}", serde_json::to_string(summary).unwrap_or_default());
        return;
    }
    println!(
        "created {}, updated {}, unchanged {}, refused {}",
        summary.created,
        summary.updated,
        summary.unchanged,
        summary.refused.len()
    );
    for refused in &summary.refused {
        println!(
            "  line {} {}: {}",
            refused.line, refused.sku, refused.reason
        );
    }
    if !summary.refused.is_empty() {
        println!("fix the refused rows and run the import again: rows already done are left alone");
    }
}

/// Draws each view over the last on a terminal; elsewhere (a pipe, a file) writes them one
/// after another, or one JSON line each with `--json`.
async fn sale_watch(
    api: &Api,
    watched: &Watched,
    every: Duration,
    json: bool,
) -> Result<Exit, CliError> {
    let terminal = console::Term::stdout();
    let redraw = !json && terminal.is_term();
    let draw = |view: &watch::View| {
        if json {
            println!("{}", serde_json::to_string(view).unwrap_or_default());
        } else if redraw {
            let _ = terminal.clear_screen();
            let _ = terminal.write_str(&watch::render(view));
        } else {
            println!("{}", watch::render(view));
        }
    };
    watch::watch(api, watched, every, draw, quit_asked()).await?;
    Ok(Exit::Done)
}

/// Completes when the operator asks to quit: `q`, Escape or Ctrl-C at a terminal, a line
/// `q` on a piped standard input, or SIGINT.
async fn quit_asked() {
    let (asked, mut heard) = tokio::sync::mpsc::unbounded_channel::<()>();
    let keys = asked.clone();
    // A plain thread, not the runtime's blocking pool: it may still be waiting for a key
    // when the program ends, and nothing should wait for it.
    std::thread::spawn(move || {
        if std::io::stdin().is_terminal() {
            let terminal = console::Term::stdout();
            while let Ok(key) = terminal.read_key_raw() {
                let quit = matches!(
                    key,
                    console::Key::Char('q' | 'Q') | console::Key::CtrlC | console::Key::Escape
                );
                if quit {
                    let _ = keys.send(());
                    return;
                }
            }
        } else {
            for line in std::io::stdin().lines() {
                match line {
                    Ok(line) if line.trim().eq_ignore_ascii_case("q") => {
                        let _ = keys.send(());
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }
    });
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = asked.send(());
        }
    });
    let _ = heard.recv().await;
}

async fn sale_rehearse(
    admin: &Api,
    buyers: &Api,
    rehearsal: &Rehearsal,
    json: bool,
) -> Result<Exit, CliError> {
    rehearse::local_only(admin)?;
    let bar = progress_bar(rehearse::plan(rehearsal).len() as u64, json, "visits");
    let report = rehearse::rehearse(admin, buyers, rehearsal, || bar.inc(1)).await;
    bar.finish_and_clear();
    let report = report?;
    if json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print_rehearsal(&report);
    }
    Ok(match report.books_balance && report.failures.is_empty() {
        true => Exit::Done,
        false => Exit::Findings,
    })
}

fn print_rehearsal(report: &Report) {
    println!(
        "{} reservations asked in {:.1} s: {} made, {} ordered, {} released",
        report.reservations_asked,
        report.seconds,
        report.reservations_made,
        report.orders,
        report.releases
    );
    println!(
        "reservation latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        report.latency_ms.p50, report.latency_ms.p99, report.latency_ms.max
    );
    for (title, codes) in [
        ("refusals", &report.refusals),
        ("failures", &report.failures),
    ] {
        let listed: Vec<String> = codes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        let listed = match listed.is_empty() {
            true => "none".to_owned(),
            false => listed.join(", "),
        };
        println!("{title}: {listed}");
    }
    for b in &report.books {
        println!(
            "{}: on_hand {} = available {} + reserved {} + sold {}; reserved+sold grew {}, the rehearsal took {}: {}",
            b.sku,
            b.on_hand,
            b.available,
            b.reserved,
            b.sold,
            b.reserved_and_sold_grew,
            b.taken_by_rehearsal,
            if b.balanced { "balanced" } else { "DOES NOT BALANCE" }
        );
    }
    if !report.books_balance {
        println!("the books do not balance: was other traffic running? run `stockroom audit` next");
    }
}

/// A bar of `len` things, hidden for `--json`.
fn progress_bar(len: u64, json: bool, things: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template = format!("{{bar:40}} {{pos}}/{{len}} {things}, {{eta}} left");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

async fn audit(api: &Api, stack: &StackArgs, json: bool) -> Result<Exit, CliError> {
    let table = stack.table(api)?;
    let aws = ops::sdk_config(api.is_local()).await;
    let report = ops::audit(&aws_sdk_dynamodb::Client::new(&aws), &table).await?;
    if json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print_audit(&report);
    }
    Ok(match report.drift.is_empty() {
        true => Exit::Done,
        false => Exit::Findings,
    })
}

fn print_audit(report: &AuditReport) {
    println!(
        "audited {} skus ({} moving while read, compared next time): {} drift",
        report.skus_audited,
        report.skus_unsettled,
        match report.drift.len() {
            0 => "no".to_owned(),
            n => n.to_string(),
        }
    );
    for drift in &report.drift {
        println!(
            "  {} {}: expected {}, found {}",
            drift.sku, drift.check, drift.expected, drift.actual
        );
    }
}

async fn redrive(api: &Api, stack: &StackArgs, max: u32, json: bool) -> Result<Exit, CliError> {
    let aws = ops::sdk_config(api.is_local()).await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let dead_letters = StackArgs::queue_url(
        &stack.dead_letter_queue_url,
        api,
        &sqs,
        ops::LOCAL_DEAD_LETTER_QUEUE,
        "dead-letter-queue-url",
    )
    .await?;
    let queue =
        StackArgs::queue_url(&stack.queue_url, api, &sqs, ops::LOCAL_QUEUE, "queue-url").await?;
    let moved = ops::redrive(&sqs, &dead_letters, &queue, max).await?;
    if json {
        println!("{}", serde_json::json!({ "moved": moved, "to": queue }));
    } else {
        println!(
            "moved {moved} dead-lettered commands back to {queue}; reconcile applies each once"
        );
    }
    Ok(Exit::Done)
}
