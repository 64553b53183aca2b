//! The use-case races of `stockroom::usecases::scenarios`, the same bodies the in-memory
//! store's unit tests run, here against the DynamoDB adapter on the emulator (conflicts
//! on, requests really overlapping).

use std::sync::Arc;

use stockroom::usecases::scenarios;
use stockroom_tests::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_clients_on_fifty_units() {
    let app = TestApp::spawn().await;
    scenarios::sixty_four_clients_on_fifty_units(Arc::new(app.store())).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_sent_by_sixteen_clients() {
    let app = TestApp::spawn().await;
    scenarios::one_request_sent_by_sixteen_clients(Arc::new(app.store())).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refunds_race_for_the_last_units() {
    let app = TestApp::spawn().await;
    scenarios::refunds_race_for_the_last_units(Arc::new(app.store())).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_limit_holds_under_a_race() {
    let app = TestApp::spawn().await;
    scenarios::a_campaign_limit_holds_under_a_race(Arc::new(app.store())).await;
    app.cleanup().await;
}
