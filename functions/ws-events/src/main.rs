use lambda_runtime::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json();
    let state = ws_events::State::from_env().await?;
    run(service_fn(|event| ws_events::handle(&state, event))).await
}
