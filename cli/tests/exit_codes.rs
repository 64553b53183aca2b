//! The binary's exit codes and messages for bad input and an API it cannot reach.

use std::process::Command;

fn stockroom(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stockroom"))
        .args(args)
        .env_remove("STOCKROOM_API")
        .env_remove("STOCKROOM_TOKEN")
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

fn csv(name: &str, text: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("stockroom-cli-{}-{name}.csv", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_input_is_2_with_what_to_fix() {
    let (code, err) = stockroom(&["stock", "import", "/nonexistent/stock.csv"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read /nonexistent/stock.csv"), "{err}");

    let headerless = csv("headerless", "name,count\ntea,1\n");
    let (code, err) = stockroom(&["stock", "import", headerless.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("sku,on_hand"), "{err}");

    // Arguments clap refuses are 2 as well.
    assert_eq!(stockroom(&["stock", "import"]).0, 2);
    assert_eq!(
        stockroom(&["stock", "import", "x.csv", "--concurrency", "0"]).0,
        2
    );
}

#[test]
fn an_api_it_cannot_reach_is_3_and_says_where_it_looked() {
    let good = csv("good", "sku,on_hand\ntea,1\n");
    // Port 1 on loopback: nothing listens there.
    let (code, err) = stockroom(&[
        "stock",
        "import",
        good.to_str().unwrap(),
        "--api",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("http://127.0.0.1:1") && err.contains("run-local"),
        "{err}"
    );
}
