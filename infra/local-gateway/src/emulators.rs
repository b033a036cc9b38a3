//! The local AWS: DynamoDB Local for DynamoDB, moto server for SQS and
//! EventBridge, each a child process on a loopback port with a log file.
//!
//! Each emulator runs under a small `sh` guard that holds the read end of a
//! pipe from this process: when this process ends, however it ends, the
//! pipe closes and the guard stops the emulator. So an emulator shared by a
//! whole test binary (kept in a `static`, never dropped) does not outlive
//! it, and neither does one of `make dev` after a crash.

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Which emulator, and how to start it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// AWS's DynamoDB Local (Java), in memory, one database for every
    /// credential and region.
    DynamoDbLocal { home: PathBuf },
    /// moto server (Python) with the project's corrections
    /// (`infra/scripts/moto_server.py`), or `MOTO_SERVER_BIN`.
    Moto {
        program: PathBuf,
        args: Vec<PathBuf>,
    },
}

impl Kind {
    /// DynamoDB Local as `infra/scripts/dynamodb-local.sh` installs it
    /// (`DYNAMODB_LOCAL_HOME` to use another copy).
    pub fn dynamodb_local(workspace: &Path) -> Self {
        let home = std::env::var_os("DYNAMODB_LOCAL_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace.join(".local/dynamodb-local"));
        Self::DynamoDbLocal { home }
    }

    /// moto as `infra/scripts/python-tools.sh` installs it.
    pub fn moto(workspace: &Path) -> Self {
        match std::env::var_os("MOTO_SERVER_BIN") {
            Some(bin) => Self::Moto {
                program: PathBuf::from(bin),
                args: Vec::new(),
            },
            None => Self::Moto {
                program: workspace.join(".venv/bin/python"),
                args: vec![workspace.join("infra/scripts/moto_server.py")],
            },
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::DynamoDbLocal { .. } => "DynamoDB Local",
            Self::Moto { .. } => "moto server",
        }
    }

    fn file_stem(&self) -> &'static str {
        match self {
            Self::DynamoDbLocal { .. } => "dynamodb-local",
            Self::Moto { .. } => "moto",
        }
    }

    /// The files that must exist, and the script that installs them.
    fn needs(&self) -> (Vec<PathBuf>, &'static str) {
        match self {
            Self::DynamoDbLocal { home } => (
                vec![home.join("DynamoDBLocal.jar")],
                "infra/scripts/dynamodb-local.sh",
            ),
            Self::Moto { program, args } => (
                std::iter::once(program).chain(args).cloned().collect(),
                "infra/scripts/python-tools.sh",
            ),
        }
    }

    fn command(&self, addr: SocketAddr) -> (PathBuf, Vec<String>) {
        match self {
            Self::DynamoDbLocal { home } => (
                PathBuf::from("java"),
                vec![
                    format!(
                        "-Djava.library.path={}",
                        home.join("DynamoDBLocal_lib").display()
                    ),
                    "-Xmx1g".into(),
                    "-XX:TieredStopAtLevel=1".into(),
                    "-jar".into(),
                    home.join("DynamoDBLocal.jar").display().to_string(),
                    "-inMemory".into(),
                    "-sharedDb".into(),
                    "-disableTelemetry".into(),
                    "-port".into(),
                    addr.port().to_string(),
                ],
            ),
            Self::Moto { program, args } => (
                program.clone(),
                args.iter()
                    .map(|a| a.display().to_string())
                    .chain([
                        "-H".into(),
                        addr.ip().to_string(),
                        "-p".into(),
                        addr.port().to_string(),
                    ])
                    .collect(),
            ),
        }
    }

    /// A URL that answers once the emulator serves requests. DynamoDB
    /// Local answers an unsigned GET with a 400 (any answer will do).
    fn probe(&self, endpoint: &str) -> (String, bool) {
        match self {
            Self::DynamoDbLocal { .. } => (format!("{endpoint}/"), false),
            Self::Moto { .. } => (format!("{endpoint}/moto-api/data.json"), true),
        }
    }
}

/// Why an emulator is not running; says which one and where its log is.
#[derive(Debug)]
pub struct StartError {
    pub emulator: &'static str,
    pub log: Option<PathBuf>,
    pub reason: String,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} did not start: {}", self.emulator, self.reason)?;
        if let Some(log) = &self.log {
            write!(f, " (its log: {})", log.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for StartError {}

/// A running emulator; stopped when dropped (or when this process ends).
pub struct Emulator {
    kind: Kind,
    pub addr: SocketAddr,
    pub log: PathBuf,
    child: Child,
    /// The guard's end of the lifeline pipe: closing it stops the emulator.
    lifeline: Option<ChildStdin>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("emulator", &self.kind.name())
            .field("addr", &self.addr)
            .field("log", &self.log)
            .finish()
    }
}

/// How long an emulator may take to answer after it was started (a cold
/// JVM on a loaded two-core machine takes a few seconds).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Runs the emulator (`$@`) and stops it when standard input closes, or
/// exits with its status when it stops by itself.
const GUARD: &str = r#"exec 3<&0
"$@" </dev/null &
pid=$!
{ read -r _ <&3; kill "$pid" 2>/dev/null; } &
wait "$pid"
status=$?
kill "$!" 2>/dev/null
exit "$status""#;

impl Emulator {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Starts `kind` on `addr` (port 0: a free loopback port, with a new
    /// one tried if another process takes it first), logging to a file in
    /// `log_dir`, and waits until it answers. `progress` is told once a
    /// second while it waits.
    pub async fn start(
        kind: Kind,
        addr: SocketAddr,
        log_dir: &Path,
        progress: impl Fn(&str, Duration),
    ) -> Result<Self, StartError> {
        let fail = |log: Option<PathBuf>, reason: String| StartError {
            emulator: kind.name(),
            log,
            reason,
        };
        let (files, installer) = kind.needs();
        if let Some(missing) = files.iter().find(|f| !f.exists()) {
            return Err(fail(
                None,
                format!(
                    "{} not found: run {installer} (make dev and make test do)",
                    missing.display()
                ),
            ));
        }
        std::fs::create_dir_all(log_dir).map_err(|e| {
            fail(
                None,
                format!("cannot create the log folder {}: {e}", log_dir.display()),
            )
        })?;
        let tries = if addr.port() == 0 { 3 } else { 1 };
        let mut last = None;
        for _ in 0..tries {
            let port_addr = match free_port(addr) {
                Ok(a) => a,
                Err(e) => return Err(fail(None, format!("cannot listen on {addr}: {e}"))),
            };
            let log = log_dir.join(format!("{}-{}.log", kind.file_stem(), port_addr.port()));
            match Self::spawn(&kind, port_addr, &log) {
                Ok(mut emulator) => match emulator.wait_ready(&progress).await {
                    Ok(()) => return Ok(emulator),
                    Err(reason) => last = Some(fail(Some(log), reason)),
                },
                Err(reason) => last = Some(fail(Some(log), reason)),
            }
        }
        Err(last.unwrap_or_else(|| fail(None, "not started".into())))
    }

    fn spawn(kind: &Kind, addr: SocketAddr, log: &Path) -> Result<Self, String> {
        let out = std::fs::File::create(log)
            .map_err(|e| format!("cannot write its log {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let (program, args) = kind.command(addr);
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(GUARD)
            .arg("emulator-guard")
            .arg(&program)
            .args(&args)
            // DynamoDB Local writes a metadata file where it runs, and
            // sends telemetry unless told not to (the flag and this).
            .current_dir(log.parent().unwrap_or(Path::new(".")))
            .env("DDB_LOCAL_TELEMETRY", "0")
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        let lifeline = child.stdin.take();
        Ok(Self {
            kind: kind.clone(),
            addr,
            log: log.to_owned(),
            child,
            lifeline,
        })
    }

    async fn wait_ready(&mut self, progress: &impl Fn(&str, Duration)) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let (url, needs_success) = self.kind.probe(&self.endpoint());
        let started = Instant::now();
        let mut told = Duration::ZERO;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "it exited at start ({status}); is port {} free?",
                    self.addr.port()
                ));
            }
            if let Ok(res) = client.get(&url).send().await
                && (!needs_success || res.status().is_success())
            {
                return Ok(());
            }
            let waited = started.elapsed();
            if waited >= READY_WITHIN {
                self.kill();
                return Err(format!(
                    "no answer on {} within {} s",
                    self.addr,
                    READY_WITHIN.as_secs()
                ));
            }
            if waited >= told + Duration::from_secs(1) {
                told = waited;
                progress(self.kind.name(), waited);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        // Closing the lifeline stops the emulator; the guard then exits.
        self.lifeline.take();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the emulator and waits until it is gone (a test that needs
    /// its dependency down can rely on it).
    pub async fn stop(self) {
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if self.lifeline.is_some() {
            self.kill();
        }
    }
}

/// A free port on `addr`'s host when its port is 0; else `addr` itself,
/// once it is known to be free (an emulator already there would answer
/// the readiness probe for the one that could not start).
fn free_port(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    TcpListener::bind(addr)?.local_addr()
}

/// Where each AWS service the functions call is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub dynamodb: String,
    pub sqs: String,
    pub eventbridge: String,
}

/// What the environment says about each service's endpoint: the SDK's own
/// `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else nothing (an
/// emulator is started for it). A blank value counts as unset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointOverrides {
    pub dynamodb: Option<String>,
    pub sqs: Option<String>,
    pub eventbridge: Option<String>,
}

impl EndpointOverrides {
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let any = var("AWS_ENDPOINT_URL");
        Self {
            dynamodb: var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| any.clone()),
            sqs: var("AWS_ENDPOINT_URL_SQS").or_else(|| any.clone()),
            eventbridge: var("AWS_ENDPOINT_URL_EVENTBRIDGE").or(any),
        }
    }

    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The folder emulator logs go to under `make dev`.
pub fn dev_log_dir(workspace: &Path) -> PathBuf {
    workspace.join(".local/logs")
}

/// Where `make dev` starts each emulator it starts.
#[derive(Clone, Copy, Debug)]
pub struct Addresses {
    pub dynamodb: SocketAddr,
    pub sqs: SocketAddr,
    pub eventbridge: SocketAddr,
}

/// Starts, side by side, an emulator for each service `overrides` leaves
/// without an endpoint: DynamoDB Local for DynamoDB, a moto server for SQS
/// and another for EventBridge (one Python process serving both made every
/// `PutEvents` wait behind the queues' long polls). The running emulators
/// (kept alive by the caller) and every service's endpoint.
pub async fn start_missing(
    workspace: &Path,
    overrides: &EndpointOverrides,
    at: Addresses,
    log_dir: &Path,
    progress: impl Fn(&str, Duration) + Copy,
) -> anyhow::Result<(Vec<Emulator>, Endpoints)> {
    let start = |given: &Option<String>, kind: Kind, addr: SocketAddr| {
        let needed = given.is_none();
        async move {
            if needed {
                Emulator::start(kind, addr, log_dir, progress)
                    .await
                    .map(Some)
            } else {
                Ok(None)
            }
        }
    };
    let (dynamodb, sqs, eventbridge) = tokio::join!(
        start(
            &overrides.dynamodb,
            Kind::dynamodb_local(workspace),
            at.dynamodb
        ),
        start(&overrides.sqs, Kind::moto(workspace), at.sqs),
        start(
            &overrides.eventbridge,
            Kind::moto(workspace),
            at.eventbridge
        ),
    );
    let (dynamodb, sqs, eventbridge) = (dynamodb?, sqs?, eventbridge?);
    let endpoint = |given: &Option<String>, started: &Option<Emulator>| -> anyhow::Result<String> {
        given
            .clone()
            .or_else(|| started.as_ref().map(Emulator::endpoint))
            .context("no endpoint and no emulator")
    };
    let endpoints = Endpoints {
        dynamodb: endpoint(&overrides.dynamodb, &dynamodb)?,
        sqs: endpoint(&overrides.sqs, &sqs)?,
        eventbridge: endpoint(&overrides.eventbridge, &eventbridge)?,
    };
    Ok((
        [dynamodb, sqs, eventbridge].into_iter().flatten().collect(),
        endpoints,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn nothing_set_starts_an_emulator_for_every_service() {
        let o = EndpointOverrides::from_lookup(lookup(&[]));
        assert_eq!(o, EndpointOverrides::default());
    }

    #[test]
    fn one_endpoint_serves_every_service() {
        let o = EndpointOverrides::from_lookup(lookup(&[("AWS_ENDPOINT_URL", "http://m:1")]));
        assert_eq!(o.dynamodb.as_deref(), Some("http://m:1"));
        assert_eq!(o.sqs.as_deref(), Some("http://m:1"));
        assert_eq!(o.eventbridge.as_deref(), Some("http://m:1"));
    }

    #[test]
    fn a_service_endpoint_wins_over_the_general_one() {
        let o = EndpointOverrides::from_lookup(lookup(&[
            ("AWS_ENDPOINT_URL", "http://m:1"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://d:2"),
        ]));
        assert_eq!(o.dynamodb.as_deref(), Some("http://d:2"));
        assert_eq!(o.sqs.as_deref(), Some("http://m:1"));
    }

    #[test]
    fn a_blank_service_endpoint_counts_as_unset() {
        let o = EndpointOverrides::from_lookup(lookup(&[
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://d:2"),
            ("AWS_ENDPOINT_URL_SQS", " "),
        ]));
        assert_eq!(o.dynamodb.as_deref(), Some("http://d:2"));
        assert_eq!(o.sqs, None);
        assert_eq!(o.eventbridge, None);
    }

    #[test]
    fn a_taken_port_is_refused_before_anything_starts() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(free_port(taken.local_addr().unwrap()).is_err());
        assert_ne!(free_port("127.0.0.1:0".parse().unwrap()).unwrap().port(), 0);
    }

    #[tokio::test]
    async fn a_missing_install_names_the_script_that_installs_it() {
        let kind = Kind::DynamoDbLocal {
            home: PathBuf::from("/nonexistent/dynamodb-local"),
        };
        let e = Emulator::start(
            kind,
            "127.0.0.1:0".parse().unwrap(),
            &std::env::temp_dir(),
            |_, _| {},
        )
        .await
        .unwrap_err();
        assert_eq!(e.emulator, "DynamoDB Local");
        assert!(e.reason.contains("infra/scripts/dynamodb-local.sh"), "{e}");
    }

    #[tokio::test]
    async fn an_emulator_that_exits_at_start_is_reported_with_its_log() {
        let kind = Kind::Moto {
            program: PathBuf::from("/bin/false"),
            args: Vec::new(),
        };
        let logs = std::env::temp_dir().join("smart-chat-emulator-tests");
        let e = Emulator::start(kind, "127.0.0.1:0".parse().unwrap(), &logs, |_, _| {})
            .await
            .unwrap_err();
        assert_eq!(e.emulator, "moto server");
        assert!(e.reason.contains("exited at start"), "{e}");
        let log = e.log.expect("the log it wrote");
        assert!(log.starts_with(&logs), "{}", log.display());
    }

    #[test]
    fn a_start_error_names_the_emulator_and_its_log() {
        let e = StartError {
            emulator: "DynamoDB Local",
            log: Some(PathBuf::from("/x/dynamodb-local-8000.log")),
            reason: "it exited at start (exit status: 1); is port 8000 free?".into(),
        };
        assert_eq!(
            e.to_string(),
            "DynamoDB Local did not start: it exited at start (exit status: 1); is port 8000 free? \
             (its log: /x/dynamodb-local-8000.log)"
        );
    }
}
