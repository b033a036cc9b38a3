use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json();
    let state = outbound::State::from_env().await?;
    run(service_fn(|event| outbound::handle(&state, event))).await
}
