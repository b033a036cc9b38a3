//! Secrets from SSM Parameter Store (moto's, here) at cold start.

use aws_sdk_ssm::types::ParameterType;
use shared::secret::Secret;
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
    let found = shared::aws::secrets::load(&ssm, "/smart-chat/test/").await?;
    let names: Vec<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(names, ["SMART_CHAT_TEST_ONLY_TOKEN"]);
    assert!(shared::secret::install_resolved(found));
    assert_eq!(
        Secret::from_env("SMART_CHAT_TEST_ONLY_TOKEN").map(|s| s.expose().to_owned()),
        Ok("from-the-parameter-store-0001".to_owned())
    );
    // Without a parameter, the environment still answers (or nothing does).
    assert!(Secret::optional_from_env("SMART_CHAT_TEST_ONLY_UNSET").is_none());
    // A path with nothing under it is no secrets, not an error.
    assert!(
        shared::aws::secrets::load(&ssm, "/smart-chat/empty")
            .await?
            .is_empty()
    );
    stack.stop().await;
    Ok(())
}
