use std::sync::Arc;

use lambda_http::{run, service_fn, Error, Request};
use place_order::PlaceOrders;
use stockroom::store::DynamoStore;
use stockroom::{config, telemetry, Config, SystemClock};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config::aws().await);
    let app = PlaceOrders::new(
        DynamoStore::new(dynamodb, config.table),
        Arc::new(SystemClock),
    );
    let app = &app;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(app.handle(req).await)
    }))
    .await
}
