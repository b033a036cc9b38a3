use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json();
    let state = counter_sync::State::from_env().await?;
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
