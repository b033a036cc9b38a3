use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    domain::telemetry::init_json();
    let (env, aws) = adapters::cold_start().await?;
    let state = outbound::State::from_env(&env, &aws)?;
    run(service_fn(|event| outbound::handle(&state, event))).await
}
