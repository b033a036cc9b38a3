use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    domain::telemetry::init_json();
    let state = forward::State::from_env(&domain::config::Env::process())?;
    run(service_fn(|event| forward::handle(&state, event))).await
}
