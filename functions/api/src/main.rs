use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    domain::telemetry::init_json();
    let (env, aws) = adapters::cold_start().await?;
    let state = api::State::from_env(&env, &aws)?;
    run(service_fn(|req| api::handle(&state, req))).await
}
