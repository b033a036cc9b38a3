//! The soak test on a stack of its own (DynamoDB Local, moto for SQS and
//! another for EventBridge, the gateway with its schedules): see
//! `local_gateway::soak` for what it does and checks.
//!
//! ```sh
//! make soak                                      # the full run
//! cargo run -p local-gateway --bin soak -- short # the two-minute version
//! ```
//!
//! `SOAK_FAULTS` (a fault-switch spec, `off`) and `SOAK_RESTARTS` change
//! one condition of the plan.
//!
//! Prints the figures and every failed check; exits non-zero if any check
//! failed.

use anyhow::Context;
use local_gateway::DevAdmin;
use local_gateway::own_stack::OwnStack;
use local_gateway::soak::{self, Plan};

const EMAIL: &str = "soak@smartchat.local";
const PASSWORD: &str = "soak-password-1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The stack's logs only when asked for (`RUST_LOG=warn`): under
    // faults they are many.
    if std::env::var_os("RUST_LOG").is_some() {
        domain::telemetry::init_pretty();
    }
    let mut plan = match std::env::args().nth(1).as_deref() {
        None | Some("full") => Plan::full(),
        Some("short") => Plan::short(),
        Some(other) => anyhow::bail!("usage: soak [full|short] (not `{other}`)"),
    };
    // One part at a time, to find which condition a failure needs.
    if let Ok(spec) = std::env::var("SOAK_FAULTS") {
        plan.faults = spec;
    }
    if let Ok(n) = std::env::var("SOAK_RESTARTS") {
        plan.restarts = n.parse().context("SOAK_RESTARTS must be a whole number")?;
    }
    println!("starting a stack of the soak's own (DynamoDB Local, moto ×2, gateway)…");
    let stack = OwnStack::start_with(
        "soak",
        DevAdmin {
            email: domain::executive::Email::parse(EMAIL).map_err(anyhow::Error::msg)?,
            password: domain::secret::Secret::new(PASSWORD.into()),
        },
        soak::configure,
    )
    .await?;
    println!("running {plan:?}");
    let report = soak::run(&stack.running, EMAIL, PASSWORD, plan).await?;
    println!("{report}");
    stack.running.shutdown().await;
    anyhow::ensure!(
        report.violations.is_empty(),
        "{} checks failed",
        report.violations.len()
    );
    Ok(())
}
