use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    domain::telemetry::init_json();
    let (env, aws) = adapters::cold_start().await?;
    let state = inbound::State::from_env(&env, &aws)?;
    run(service_fn(|event| inbound::handle(&state, event))).await
}
