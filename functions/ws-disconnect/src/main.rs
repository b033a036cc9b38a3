use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    domain::telemetry::init_json();
    let (env, aws) = adapters::cold_start().await?;
    let state = ws_disconnect::State::from_env(&env, &aws)?;
    run(service_fn(|event| ws_disconnect::handle(&state, event))).await
}
