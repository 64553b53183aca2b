use std::sync::Arc;

use lambda_http::{run, service_fn, Error, Request};
use refund::Refunds;
use stockroom::queue::SqsQueue;
use stockroom::store::DynamoStore;
use stockroom::{config, telemetry, Config, SystemClock};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let queue_url = config
        .queue_url
        .clone()
        .ok_or("STOCKROOM_QUEUE_URL is not set")?;
    let aws = config::aws().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config.table);
    let queue = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url));
    let app = Refunds::new(store, queue, Arc::new(SystemClock));
    let app = &app;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(app.handle(req).await)
    }))
    .await
}
