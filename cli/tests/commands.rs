//! The `stockroom` binary's commands against a local system of the test's own: `sale
//! watch`, `sale rehearse`, `audit` and `dlq redrive`.

use std::process::Stdio;
use std::time::Duration;

use stockroom_tests::{TestApp, TokenKind};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const LAST_LINE: &str = "q or Ctrl-C quits";

fn watch(app: &TestApp, args: &[&str]) -> Child {
    sale(app, "watch", args)
}

fn sale(app: &TestApp, command: &str, args: &[&str]) -> Child {
    stockroom(app, &[&["sale", command], args].concat())
}

/// The binary pointed at `app`: its API, with an admin token, and its emulator and table.
fn stockroom(app: &TestApp, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stockroom"))
        .args(args)
        .args(["--api", &app.base])
        .env("AWS_ENDPOINT_URL", &app.emulator)
        .env("AWS_ACCESS_KEY_ID", "operator")
        .env("AWS_SECRET_ACCESS_KEY", "operator")
        .env("AWS_REGION", "us-east-1")
        .env("STOCKROOM_TABLE", &app.resources.table)
        .env(
            "STOCKROOM_TOKEN",
            app.token_for(TokenKind::Admin, "operator"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts")
}

/// Every line the child prints, as it prints them.
fn lines(child: &mut Child) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut out = BufReader::new(child.stdout.take().expect("piped")).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = out.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Lines until one satisfies `done` (within 20 s), all of them.
async fn until(
    rx: &mut mpsc::UnboundedReceiver<String>,
    mut done: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    let read = async {
        while let Some(line) = rx.recv().await {
            let last = done(&line);
            seen.push(line);
            if last {
                return;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .is_err()
    {
        panic!("not seen in 20 s; saw:\n{}", seen.join("\n"));
    }
    seen
}

async fn exit_code(child: Child) -> (i32, String) {
    let (code, _, err) = ended(child, Duration::from_secs(10)).await;
    (code, err)
}

/// The exit code, standard output and standard error of `child`, which must end within
/// `within`.
async fn ended(child: Child, within: Duration) -> (i32, String, String) {
    let out = tokio::time::timeout(within, child.wait_with_output())
        .await
        .expect("the command ends in time")
        .expect("its status");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_watch_shows_the_sale_as_it_moves_and_quits_on_q() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 50).await;
    app.set_stock("cup", 5).await;
    let mut child = watch(&app, &["tea", "cup"]);
    let mut rx = lines(&mut child);
    let first = until(&mut rx, |l| l == LAST_LINE).await;
    let tea = first
        .iter()
        .find(|l| l.starts_with("tea "))
        .expect("a tea line");
    assert!(
        tea.split_whitespace().take(3).eq(["tea", "50", "50"]),
        "{tea}"
    );

    for i in 0..5 {
        let answer = app.reserve(&format!("watch-{i}"), &[("tea", 2)]).await;
        assert_eq!(answer.status, 201, "{}", answer.text);
    }
    let refused = app.reserve("watch-big", &[("cup", 99)]).await;
    assert_eq!(refused.code(), "insufficient_stock");

    // A frame that shows all of it: tea 40 available, 10 reserved, and the refusal.
    let mut frame = Vec::new();
    let shown = until(&mut rx, |l| {
        if l.starts_with("tea ") {
            frame.clear();
        }
        frame.push(l.to_owned());
        l == LAST_LINE
            && frame.iter().any(|l| {
                l.split_whitespace()
                    .take(5)
                    .eq(["tea", "50", "40", "10", "0"])
            })
            && frame
                .iter()
                .any(|l| l.starts_with("refusals/s:") && l.contains("insufficient_stock"))
    })
    .await;
    assert!(shown.iter().any(|l| l.starts_with("reservations/s")));

    child
        .stdin
        .take()
        .expect("piped")
        .write_all(b"q\n")
        .await
        .expect("the watch reads its input");
    let (code, err) = exit_code(child).await;
    assert_eq!(code, 0, "{err}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_campaign_watch_writes_json_views_and_ends_cleanly_on_sigint() {
    let app = TestApp::spawn().await;
    app.set_stock("lamp", 3).await;
    let campaign = app
        .send(
            "PUT",
            "/campaigns/night",
            None,
            Some(
                serde_json::json!({
                    "skus": ["lamp"],
                    "starts_at": "2026-01-01T00:00:00Z",
                    "ends_at": "2099-01-01T00:00:00Z",
                    "per_customer_limit": 2
                })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(campaign.status, 201, "{}", campaign.text);
    let mut child = watch(&app, &["--campaign", "night", "--json"]);
    let mut rx = lines(&mut child);
    let seen = until(&mut rx, |_| true).await;
    let view: serde_json::Value = serde_json::from_str(&seen[0]).expect("a JSON view");
    assert_eq!(view["title"], "campaign night");
    assert_eq!(view["skus"][0]["sku"], "lamp");
    assert_eq!(view["skus"][0]["available"], 3);

    let pid = child.id().expect("running").to_string();
    let signal = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(signal.success());
    let (code, err) = exit_code(child).await;
    assert_eq!(code, 0, "{err}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_watch_of_an_unknown_sku_says_so_and_ends_with_1() {
    let app = TestApp::spawn().await;
    let child = watch(&app, &["no-such-sku"]);
    let (code, err) = exit_code(child).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("sku_not_found"), "{err}");
    app.cleanup().await;
}

async fn put_campaign(app: &TestApp, id: &str, skus: &[&str], per_customer_limit: u32) {
    let body = serde_json::json!({
        "skus": skus,
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2099-01-01T00:00:00Z",
        "per_customer_limit": per_customer_limit
    });
    let path = format!("/campaigns/{id}");
    let answer = app.send("PUT", &path, None, Some(body.to_string())).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
}

#[tokio::test]
async fn a_rehearsal_sells_out_reports_refusals_by_code_and_checks_the_books() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 40).await;
    app.set_stock("cup", 6).await;
    put_campaign(&app, "rehearsal", &["tea", "cup"], 3).await;
    let buyer_token = app.token_for(TokenKind::Staff, "rehearsal");
    let child = sale(
        &app,
        "rehearse",
        &[
            "--sku",
            "tea",
            "--sku",
            "cup",
            "--campaign",
            "rehearsal",
            "--buyers",
            "12",
            "--rate",
            "40",
            "--duration",
            "2",
            "--seed",
            "5",
            "--max-quantity",
            "2",
            "--json",
            "--buyer-token",
            &buyer_token,
        ],
    );
    let (code, out, err) = ended(child, Duration::from_secs(60)).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("a JSON report");

    assert_eq!(report["reservations_asked"], 80, "{report}");
    assert_eq!(report["books_balance"], true, "{report}");
    assert_eq!(report["failures"], serde_json::json!({}), "{report}");
    let made = report["reservations_made"].as_u64().unwrap();
    let refusals = report["refusals"].as_object().unwrap();
    // 46 units among 12 buyers allowed 3 each: the limit and the sell-out both refuse.
    assert!(refusals.contains_key("purchase_limit_exceeded"), "{report}");
    assert!(made > 0 && made < 80, "{report}");
    // Every reservation asked was made or refused, and nothing else was refused: the
    // holds outlive the rehearsal, so each order and release of one goes through.
    let refused = report["reservations_refused"].as_u64().unwrap();
    assert_eq!(made + refused, 80, "{report}");
    let by_code: u64 = refusals.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(by_code, refused, "{report}");
    assert!(report["releases"].as_u64().unwrap() > 0, "{report}");
    assert!(report["orders"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["latency_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{report}"
    );

    // The books it printed are the store's, and they add up.
    let mut taken_in_all = 0;
    for books in report["books"].as_array().unwrap() {
        let sku = books["sku"].as_str().unwrap();
        let (available, reserved, sold, on_hand) = stockroom_tests::levels(&app.stock(sku).await);
        assert_eq!(
            (on_hand, available, reserved, sold),
            (
                books["on_hand"].as_u64().unwrap(),
                books["available"].as_u64().unwrap(),
                books["reserved"].as_u64().unwrap(),
                books["sold"].as_u64().unwrap()
            ),
            "{sku}"
        );
        assert_eq!(on_hand, available + reserved + sold, "{sku}");
        assert_eq!(
            books["taken_by_rehearsal"].as_u64().unwrap(),
            reserved + sold,
            "{sku}"
        );
        taken_in_all += reserved + sold;
    }
    assert!(
        taken_in_all <= 12 * 3,
        "no buyer over the campaign's limit: {report}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_rehearsal_whose_books_do_not_balance_ends_with_4() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    // Another sale runs at the same time: what the rehearsal sees move is not its own.
    let other = tokio::spawn({
        let base = app.base.clone();
        let token = app.token_for(TokenKind::Staff, "other");
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let answer = reqwest::Client::new()
                .post(format!("{base}/reservations"))
                .bearer_auth(token)
                .header("Idempotency-Key", "other-sale")
                .json(&serde_json::json!({"lines": [{"sku": "tea", "quantity": 3}]}))
                .send()
                .await
                .expect("the API answers");
            assert_eq!(answer.status(), 201);
        }
    });
    let buyer_token = app.token_for(TokenKind::Staff, "rehearsal");
    let child = sale(
        &app,
        "rehearse",
        &[
            "--sku",
            "tea",
            "--rate",
            "2",
            "--duration",
            "2",
            "--buyers",
            "2",
            "--buyer-token",
            &buyer_token,
        ],
    );
    let (code, out, err) = ended(child, Duration::from_secs(60)).await;
    other.await.expect("the other sale reserved");
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        out.contains("DOES NOT BALANCE") && out.contains("stockroom audit"),
        "{out}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_audit_finds_no_drift_then_the_drift_made_behind_the_services_back() {
    let app = TestApp::spawn().await;
    app.set_stock("tea", 10).await;
    app.order(
        "audit-1",
        serde_json::json!([{"sku": "tea", "quantity": 2}]),
    )
    .await;

    let (code, out, err) = ended(stockroom(&app, &["audit"]), Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("audited 1 skus") && out.contains("no drift"),
        "{out}"
    );

    app.set_sold("SKU#tea#000", 0).await;
    let (code, out, err) = ended(
        stockroom(&app, &["audit", "--json"]),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, 4, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("a JSON report");
    assert_eq!(report["skus_audited"], 1);
    assert_eq!(
        report["drift"],
        serde_json::json!([{"sku": "tea", "check": "counters_equal_on_hand", "expected": 10, "actual": 8}]),
        "{report}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_redrive_moves_every_dead_letter_back_and_then_nothing() {
    let app = TestApp::spawn().await;
    for n in 0..12 {
        app.sqs
            .send_message()
            .queue_url(app.dead_letter_queue_url())
            .message_body(format!("{{\"dead\": {n}}}"))
            .send()
            .await
            .expect("a dead letter");
    }
    let args = [
        "dlq",
        "redrive",
        "--json",
        "--queue-url",
        app.queue_url(),
        "--dead-letter-queue-url",
        app.dead_letter_queue_url(),
    ];
    let (code, out, err) = ended(stockroom(&app, &args), Duration::from_secs(30)).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let moved: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(moved["moved"], 12, "{out}");
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let received = app
            .sqs
            .receive_message()
            .queue_url(app.queue_url())
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        bodies.extend(
            received
                .messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.body),
        );
    }
    bodies.sort();
    let mut expected: Vec<String> = (0..12).map(|n| format!("{{\"dead\": {n}}}")).collect();
    expected.sort();
    assert_eq!(bodies, expected);

    let (code, out, _) = ended(stockroom(&app, &args), Duration::from_secs(30)).await;
    assert_eq!(code, 0);
    assert!(out.contains("\"moved\":0"), "{out}");
    app.cleanup().await;
}

#[tokio::test]
async fn audit_and_redrive_of_a_deployed_stack_ask_for_its_outputs() {
    for args in [
        &[
            "audit",
            "--api",
            "https://abc.execute-api.eu-west-1.amazonaws.com",
        ][..],
        &[
            "dlq",
            "redrive",
            "--api",
            "https://abc.execute-api.eu-west-1.amazonaws.com",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stockroom"))
            .args(args)
            .env_remove("STOCKROOM_TABLE")
            .env_remove("STOCKROOM_QUEUE_URL")
            .env_remove("STOCKROOM_DEAD_LETTER_QUEUE_URL")
            .output()
            .await
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("pass --table") || err.contains("pass --dead-letter-queue-url"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_signed_api_sends_each_call_with_sigv4_from_the_credentials_it_was_given() {
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_credential_types::Credentials;
    use tokio::io::AsyncReadExt;

    // One request captured by a listener of this test's own, answered 200.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let captured = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buffer).await.unwrap();
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buffer[..n]);
        }
        socket
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            )
            .await
            .unwrap();
        String::from_utf8_lossy(&request).to_lowercase()
    });
    let credentials = Credentials::new("AKIDOPERATOR", "secret", None, None, "test");
    let api = stockroom_cli::Api::signed(
        &base,
        SharedCredentialsProvider::new(credentials),
        "eu-west-1".into(),
    );
    stockroom_cli::campaign_show(&api, "night")
        .await
        .expect("answered");
    let request = captured.await.unwrap();
    assert!(request.starts_with("get /campaigns/night "), "{request}");
    assert!(
        request.contains("authorization: aws4-hmac-sha256 credential=akidoperator/")
            && request.contains("/eu-west-1/execute-api/aws4_request"),
        "{request}"
    );
    assert!(request.contains("x-amz-date: "), "{request}");
    assert!(!request.contains("bearer"), "{request}");
}
