use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    domain::telemetry::init_json();
    let (env, aws) = adapters::cold_start().await?;
    let state = counter_sync::State::from_env(&env, &aws)?;
    run(service_fn(|event| async {
        counter_sync::handle(&state, event).await.map(|r| {
            serde_json::json!({
                "drifting": r.drifting,
                "repaired": r.repaired,
                "went_offline": r.went_offline,
            })
        })
    }))
    .await
}
