//! Secrets from SSM Parameter Store, read once per cold start.
//!
//! `SECRETS_SSM_PATH` (template parameter `SecretsParameterPath`, e.g.
//! `/smart-chat/prod`) names a path; every parameter directly under it
//! (SecureString, decrypted) stands for the environment variable named by
//! its last segment: `/smart-chat/prod/JWT_SECRET_KEY` is `JWT_SECRET_KEY`.
//! Values found there win over the environment, which stays the fallback
//! for local and development stacks.

use std::collections::HashMap;

use domain::secret::Secret;

/// Every parameter under `path`, by its last path segment.
pub async fn load(
    client: &aws_sdk_ssm::Client,
    path: &str,
) -> anyhow::Result<HashMap<String, Secret>> {
    let path = path.trim_end_matches('/');
    let mut found = HashMap::new();
    let mut pages = client
        .get_parameters_by_path()
        .path(path)
        .recursive(false)
        .with_decryption(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow::anyhow!(
                "reading secrets under {path}: {}",
                aws_sdk_ssm::error::DisplayErrorContext(e)
            )
        })?;
        for p in page.parameters() {
            let (Some(name), Some(value)) = (p.name(), p.value()) else {
                continue;
            };
            if let Some(short) = name.rsplit('/').next().filter(|s| !s.is_empty()) {
                found.insert(short.to_owned(), Secret::new(value.to_owned()));
            }
        }
    }
    Ok(found)
}

/// At cold start: when `SECRETS_SSM_PATH` is set, the secrets under it
/// (for [`domain::config::Env::with_secrets`]); none otherwise.
pub async fn resolve(
    env: &domain::config::Env,
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<HashMap<String, Secret>> {
    let Some(path) = env.get("SECRETS_SSM_PATH") else {
        return Ok(HashMap::new());
    };
    let found = load(&aws_sdk_ssm::Client::new(sdk), path).await?;
    tracing::info!(path = %path, count = found.len(), "secrets read from the parameter store");
    Ok(found)
}
