use std::sync::Arc;

use lambda_http::{run, Error};
use reserve_stock::ReserveStock;
use stockroom::store::DynamoStore;
use stockroom::{config, http, telemetry, Config, SystemClock};

// One thread: Lambda hands a process one event at a time, and a second worker thread only
// adds wake-ups across threads to every invocation (README "Lean functions").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config::aws());
    let app = ReserveStock::new(
        DynamoStore::new(dynamodb, config.table),
        Arc::new(SystemClock),
    );
    run(http::api(reserve_stock::routes().with_state(Arc::new(app)))).await
}
