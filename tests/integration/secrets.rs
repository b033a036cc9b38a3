//! Secrets from SSM Parameter Store (moto's, here) at cold start.

use aws_sdk_ssm::types::ParameterType;
use domain::config::Env;
use domain::secret::Secret;
use smart_chat_tests::*;

#[tokio::test]
async fn secrets_under_the_configured_path_win_over_the_environment() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let sdk = local_gateway::local_sdk_config().await;
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&sdk)
            .endpoint_url(stack.moto_endpoint()?)
            .build(),
    );
    for (name, value) in [
        (
            "/smart-chat/test/SMART_CHAT_TEST_ONLY_TOKEN",
            "from-the-parameter-store-0001",
        ),
        (
            "/smart-chat/test/nested/NOT_THIS_ONE",
            "deeper paths are not read",
        ),
        ("/smart-chat/other/NOR_THIS_ONE", "another stage's secret"),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::SecureString)
            .send()
            .await?;
    }
    let found = adapters::secrets::load(&ssm, "/smart-chat/test/").await?;
    let names: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(names, ["SMART_CHAT_TEST_ONLY_TOKEN"]);

    // What a cold start does: the function's environment names the path,
    // the parameter store's value wins over the variable of the same name.
    let env = Env::from_vars([
        ("SECRETS_SSM_PATH", "/smart-chat/test/"),
        ("SMART_CHAT_TEST_ONLY_TOKEN", "from-the-variable"),
        ("SMART_CHAT_TEST_ONLY_OTHER", "only-in-the-variable"),
    ]);
    let at_moto = sdk
        .to_builder()
        .endpoint_url(stack.moto_endpoint()?)
        .build();
    let found = adapters::secrets::resolve(&env, &at_moto).await?;
    let env = env.with_secrets(found);
    let secret = |name: &str| env.secret(name).map(|s: Secret| s.expose().to_owned());
    assert_eq!(
        secret("SMART_CHAT_TEST_ONLY_TOKEN").as_deref(),
        Some("from-the-parameter-store-0001")
    );
    // Without a parameter, the variable still answers (or nothing does).
    assert_eq!(
        secret("SMART_CHAT_TEST_ONLY_OTHER").as_deref(),
        Some("only-in-the-variable")
    );
    assert!(secret("SMART_CHAT_TEST_ONLY_UNSET").is_none());
    // No path configured: no request, no secrets.
    assert!(
        adapters::secrets::resolve(&Env::default(), &at_moto)
            .await?
            .is_empty()
    );
    // A path with nothing under it is no secrets, not an error.
    assert!(
        adapters::secrets::load(&ssm, "/smart-chat/empty")
            .await?
            .is_empty()
    );
    stack.stop().await;
    Ok(())
}
