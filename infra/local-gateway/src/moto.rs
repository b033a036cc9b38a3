//! Starts moto server (the local AWS emulator) on a loopback port.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// A running moto server; killed when dropped.
pub struct MotoServer {
    pub addr: SocketAddr,
    child: Child,
}

impl MotoServer {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How moto is started: `MOTO_SERVER_BIN` when set, else the project's
    /// virtualenv Python running `infra/scripts/moto_server.py` (moto with
    /// each DynamoDB request atomic, as in DynamoDB).
    pub fn binary(workspace: &Path) -> (PathBuf, Vec<PathBuf>) {
        match std::env::var_os("MOTO_SERVER_BIN") {
            Some(bin) => (PathBuf::from(bin), Vec::new()),
            None => (
                workspace.join(".venv/bin/python"),
                vec![workspace.join("infra/scripts/moto_server.py")],
            ),
        }
    }

    /// Starts moto on `addr` (port 0: a free port) and waits until it answers.
    pub async fn start(
        command: &(PathBuf, Vec<PathBuf>),
        addr: SocketAddr,
    ) -> anyhow::Result<Self> {
        let (binary, args) = command;
        for needed in std::iter::once(binary).chain(args) {
            if !needed.exists() {
                bail!(
                    "{} not found: run infra/scripts/python-tools.sh (make dev and make test do)",
                    needed.display()
                );
            }
        }
        let addr = if addr.port() == 0 {
            // Ask the OS for a free port, then hand it to moto.
            let l = TcpListener::bind(addr).context("finding a free port for moto")?;
            l.local_addr()?
        } else {
            addr
        };
        let child = Command::new(binary)
            .args(args)
            .arg("-H")
            .arg(addr.ip().to_string())
            .arg("-p")
            .arg(addr.port().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self { addr, child };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/moto-api/data.json", self.endpoint());
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "moto server exited at start ({status}); is port {} free?",
                    self.addr.port()
                );
            }
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("moto server did not answer on {} within 30 s", self.addr)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
