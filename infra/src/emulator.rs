//! The DynamoDB/SQS emulator (`infra/emulator.py`: moto, behaving like DynamoDB where stockroom depends on it).

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{project_root, Error, Result};

/// A running emulator on 127.0.0.1; it stops when this is dropped or this process ends.
pub struct Emulator {
    pub endpoint: String,
    _child: Child,
}

impl Emulator {
    /// Starts `infra/emulator.py` from the project venv (`infra/venv` creates it) on
    /// `port` (0 picks a free one) and waits until it listens.
    pub async fn start(port: u16) -> Result<Self> {
        let root = project_root();
        let python = venv_python(&root)?;
        let mut child = Command::new(&python)
            .arg(root.join("infra/emulator.py"))
            .args(["--port", &port.to_string(), "--exit-with-parent", "--iam"])
            // Every function's calls are held to its policy in the template, as in AWS.
            .arg(root.join("template.yaml"))
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(Error::io(format!("starting {}", python.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Setup("emulator has no stdout".into()))?;
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(Error::io("reading the emulator"))?
        {
            if let Some(port) = line.strip_prefix("listening on ") {
                return Ok(Self {
                    endpoint: format!("http://127.0.0.1:{}", port.trim()),
                    _child: child,
                });
            }
        }
        Err(Error::Setup(format!(
            "the emulator exited before it listened on port {port} (is the port taken?)"
        )))
    }
}

pub fn venv_python(root: &Path) -> Result<std::path::PathBuf> {
    let python = root.join(".venv/bin/python");
    if python.exists() {
        Ok(python)
    } else {
        Err(Error::Setup(
            "the emulator is not installed: run infra/venv (infra/run-local and infra/test do)"
                .into(),
        ))
    }
}
