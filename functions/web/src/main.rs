use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    domain::telemetry::init_json();
    let env = domain::config::Env::process();
    let state = web::State::from_env(&env)?;
    run(service_fn(|req| web::handle(&state, req))).await
}
