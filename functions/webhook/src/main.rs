use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    domain::telemetry::init_json();
    let (env, aws) = adapters::cold_start().await?;
    let state = webhook::State::from_env(&env, &aws)?;
    run(service_fn(|req| webhook::handle(&state, req))).await
}
