//! `stockroom sale watch`, the binary, against a local system of the test's own.

use std::process::Stdio;
use std::time::Duration;

use stockroom_tests::{TestApp, TokenKind};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const LAST_LINE: &str = "q or Ctrl-C quits";

fn watch(app: &TestApp, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stockroom"))
        .args(["sale", "watch", "--api", &app.base])
        .args(args)
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
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("the watch ends within 10 s of being asked to")
        .expect("its status");
    (
        out.status.code().unwrap_or(-1),
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
