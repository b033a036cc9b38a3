use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json();
    let state = internal::State::from_env().await?;
    run(service_fn(|req| internal::handle(&state, req))).await
}
