use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json();
    let state = api::State::from_env().await?;
    run(service_fn(|req| api::handle(&state, req))).await
}
