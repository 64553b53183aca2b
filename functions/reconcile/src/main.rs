use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use reconcile::{Reconcile, Settings};
use serde_json::Value;
use stockroom::queue::SqsQueue;
use stockroom::store::DynamoStore;
use stockroom::{config, telemetry, Config, SystemClock};

// One thread: Lambda hands a process one event at a time, and a second worker thread only
// adds wake-ups across threads to every invocation (README "Lean functions").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let settings = Settings::from_env()?;
    let queue_url = config
        .queue_url
        .clone()
        .ok_or("STOCKROOM_QUEUE_URL is not set")?;
    let aws = config::aws();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table);
    let queue = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url));
    let app = Reconcile::new(store, queue, Arc::new(SystemClock), settings);
    let app = &app;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        // An Err fails the invocation, so Lambda keeps the batch and counts an error.
        app.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
