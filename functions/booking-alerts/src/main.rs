use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    domain::telemetry::init_json();
    let (env, aws) = adapters::cold_start().await?;
    let state = booking_alerts::State::from_env(&env, &aws)?;
    run(service_fn(|event| async {
        // Boxed: the run's future is deep enough to exceed the compiler's
        // layout recursion limit when nested in the runtime's.
        Box::pin(booking_alerts::handle(&state, event))
            .await
            .map(|r| serde_json::json!(r))
    }))
    .await
}
