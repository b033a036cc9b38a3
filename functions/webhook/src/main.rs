use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json();
    let state = webhook::State::from_env().await?;
    run(service_fn(|req| webhook::handle(&state, req))).await
}
