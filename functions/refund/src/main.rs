use std::sync::Arc;

use lambda_http::{run, Error};
use refund::Refunds;
use stockroom::queue::SqsQueue;
use stockroom::store::DynamoStore;
use stockroom::{config, http, telemetry, Config, SystemClock};

// One thread: Lambda hands a process one event at a time, and a second worker thread only
// adds wake-ups across threads to every invocation (README "Lean functions").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let queue_url = config
        .queue_url
        .clone()
        .ok_or("STOCKROOM_QUEUE_URL is not set")?;
    let aws = config::aws();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table);
    let queue = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url));
    let app = Refunds::new(store, queue, Arc::new(SystemClock));
    run(http::api(refund::routes().with_state(Arc::new(app)))).await
}
