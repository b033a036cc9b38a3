//! The soak's short run (`make soak` runs the full one): webhooks posted
//! three times at once, 5 % of every dependency's requests failing, the
//! consumers killed twice, dashboards dropping and reconnecting, agents
//! answering; then every check read from the store (see
//! `local_gateway::soak`).

use local_gateway::soak::{self, Plan};
use smart_chat_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_doubled_when_everything_around_the_product_fails() -> anyhow::Result<()>
{
    let stack = Stack::start_with(soak::configure).await?;
    let plan = Plan::short();
    let report = soak::run(&stack.running, ADMIN_EMAIL, ADMIN_PASSWORD, plan.clone()).await?;
    println!("{report}");
    assert!(report.violations.is_empty(), "{report}");
    // The run did what it says: every message, every fault kind it can
    // reach, the kills, the reconnections, the answers.
    assert_eq!(report.messages, plan.senders * plan.per_sender, "{report}");
    assert_eq!(report.consumer_kills, plan.restarts as u64);
    // Retries were counted: each poison message alone came back four
    // times before its fifth receive sent it to the DLQ.
    let handed_again = report.redeliveries.values().sum::<u64>();
    assert!(handed_again >= 4 * plan.poison as u64, "{report}");
    assert!(report.faults_injected.len() >= 8, "{report}");
    assert!(report.dashboard_reconnects > 0, "{report}");
    // Every chat taken has a stored reply (a check of the run's own).
    assert!(report.answers > 0, "{report}");
    assert_eq!(report.dead_letters.get("InboundDLQ"), Some(&plan.poison));
    stack.stop().await;
    Ok(())
}
