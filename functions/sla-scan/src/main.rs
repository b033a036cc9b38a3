use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    domain::telemetry::init_json();
    let (env, aws) = adapters::cold_start().await?;
    let state = sla_scan::State::from_env(&env, &aws)?;
    run(service_fn(|event| async {
        sla_scan::handle(&state, event).await.map(|r| {
            serde_json::json!({
                "examined": r.examined,
                "alerts": r.alerts,
                "escalations": r.escalations,
                "requeued": r.requeued,
            })
        })
    }))
    .await
}
