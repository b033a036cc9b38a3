use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json();
    let state = forward::State::from_env()?;
    run(service_fn(|event| forward::handle(&state, event))).await
}
