//! `stockroom`: the operator's command line (README "Operator CLI").

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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
    let api = Api::new(&cli.api, cli.token.clone());
    let outcome = match cli.command {
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
    };
    let exit = outcome.unwrap_or_else(|e| {
        eprintln!("stockroom: {e}");
        e.exit()
    });
    ExitCode::from(exit as u8)
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
    let bar = ProgressBar::new(rows.len() as u64);
    if json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} rows, {eta} left") {
        bar.set_style(style);
    }
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
