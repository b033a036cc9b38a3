//! Authority comes from the store on every request: roles, teams, disabled
//! flags and password changes apply at once, whatever a token says.

use std::time::Duration;

use domain::auth::{Claims, ExternalIssuer};
use domain::channel::Stakeholder;
use domain::executive::ExecutiveStore;
use domain::executive::{ExecutiveId, Role};
use reqwest::Method;
use serde_json::json;
use smart_chat_tests::*;

async fn handshake_status(stack: &Stack, token: &str) -> anyhow::Result<Option<u16>> {
    stack.handshake_status(&format!("?token={token}")).await
}

async fn patch_executive(stack: &Stack, id: &str, body: serde_json::Value) -> anyhow::Result<u16> {
    let admin = stack.admin_token().await?;
    let (status, answer) = stack
        .call(
            Method::PATCH,
            &format!("/api/executives/{id}"),
            Some(&admin),
            Some(body),
        )
        .await?;
    anyhow::ensure!(status == 200, "PATCH {id}: {status} {answer}");
    Ok(status)
}

#[tokio::test]
async fn a_demoted_admin_keeps_no_admin_rights_with_the_old_token() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack
        .add_executive(
            "lead",
            "lead@test.local",
            "lead-password",
            Role::Admin,
            &[Stakeholder::Partner],
            false,
        )
        .await?;
    let old = stack.login("lead@test.local", "lead-password").await?;
    let (status, _) = stack
        .call(Method::GET, "/api/executives", Some(&old), None)
        .await?;
    assert_eq!(status, 200);

    patch_executive(&stack, "lead", json!({"role": "agent"})).await?;

    // HTTP: the token still says admin; the store does not.
    let (status, _) = stack
        .call(Method::GET, "/api/executives", Some(&old), None)
        .await?;
    assert_eq!(status, 403);
    // WebSocket: reconnecting with the old token gives the Partner dashboard only.
    let mut dash = stack.connect(&old).await?;
    let other_team = dash
        .request("fetch_all_chats", json!({"customer_type": "Customer"}))
        .await?;
    assert_eq!(other_team["event"], "error", "{other_team}");
    assert_eq!(other_team["data"]["code"], "forbidden");
    let own = dash
        .request("fetch_all_chats", json!({"customer_type": "Partner"}))
        .await?;
    assert_ne!(own["event"], "error", "{own}");
    dash.close().await;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_open_socket_follows_the_store_frame_by_frame() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut dash = stack.connect_agent("asha", Stakeholder::Partner).await?;
    let denied = dash
        .request("fetch_all_chats", json!({"customer_type": "Vendor"}))
        .await?;
    assert_eq!(denied["data"]["code"], "forbidden");
    // Teams changed behind the socket's back (no close sent at all).
    let store = stack.store();
    let id = ExecutiveId::parse("asha").map_err(anyhow::Error::msg)?;
    let mut asha = store
        .executive(&id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("asha"))?;
    asha.stakeholders = vec![Stakeholder::Partner, Stakeholder::Vendor];
    store.put_executive(&asha).await?;
    let allowed = dash
        .request("fetch_all_chats", json!({"customer_type": "Vendor"}))
        .await?;
    assert_ne!(allowed["event"], "error", "{allowed}");
    // The password changed and the close never arrived: the next frame is
    // refused with `unauthorized` and the socket is closed.
    asha.token_generation += 1;
    store.put_executive(&asha).await?;
    let refused = dash.request("config", json!({})).await?;
    assert_eq!(refused["data"]["code"], "unauthorized", "{refused}");
    assert!(dash.closed_within(Duration::from_secs(5)).await);
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_password_change_or_disable_revokes_earlier_tokens_and_closes_sockets()
-> anyhow::Result<()> {
    let stack = Stack::start().await?;
    stack
        .add_executive(
            "ravi",
            "ravi@test.local",
            "ravi-password",
            Role::Agent,
            &[Stakeholder::Customer],
            false,
        )
        .await?;
    let before = stack.login("ravi@test.local", "ravi-password").await?;
    let mut dash = stack.connect(&before).await?;

    patch_executive(&stack, "ravi", json!({"password": "ravi-new-password"})).await?;
    assert!(
        dash.closed_within(Duration::from_secs(5)).await,
        "socket closed"
    );
    let (status, answer) = stack
        .call(Method::GET, "/api/dashboard/stats", Some(&before), None)
        .await?;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(handshake_status(&stack, &before).await?, Some(401));
    let after = stack.login("ravi@test.local", "ravi-new-password").await?;
    let (status, _) = stack
        .call(Method::GET, "/api/dashboard/stats", Some(&after), None)
        .await?;
    assert_eq!(status, 200);

    // Disabling revokes too; enabling again does not bring old tokens back.
    let mut dash = stack.connect(&after).await?;
    patch_executive(&stack, "ravi", json!({"disabled": true})).await?;
    assert!(
        dash.closed_within(Duration::from_secs(5)).await,
        "socket closed"
    );
    assert_eq!(handshake_status(&stack, &after).await?, Some(403));
    patch_executive(&stack, "ravi", json!({"disabled": false})).await?;
    let (status, _) = stack
        .call(Method::GET, "/api/dashboard/stats", Some(&after), None)
        .await?;
    assert_eq!(status, 401);
    stack.login("ravi@test.local", "ravi-new-password").await?;
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn tokens_for_nobody_we_know_pass_only_from_the_external_issuer_with_least_authority()
-> anyhow::Result<()> {
    let stack = Stack::start_with(|c| {
        c.external_jwt = Some(ExternalIssuer {
            issuer: "communication-master".into(),
            max_ttl: chrono::Duration::hours(1),
        });
    })
    .await?;
    let jwt = &stack.running.jwt;
    let sign = |c: &Claims| jwt.sign(c).map_err(anyhow::Error::msg);
    // Ours, signed with our key, naming no executive: refused.
    let ghost = Claims::own("ghost", Role::Admin, chrono::Duration::hours(1));
    let token = sign(&ghost)?;
    assert_eq!(
        stack
            .call(Method::GET, "/api/dashboard/stats", Some(&token), None)
            .await?
            .0,
        401
    );
    assert_eq!(handshake_status(&stack, &token).await?, Some(401));
    // No issuer, or one we do not know: refused.
    for iss in [None, Some("someone-else".to_owned())] {
        let token = sign(&Claims {
            iss,
            aud: None,
            ..ghost.clone()
        })?;
        assert_eq!(
            stack
                .call(Method::GET, "/api/dashboard/stats", Some(&token), None)
                .await?
                .0,
            401
        );
    }
    // The external issuer: an agent of the teams it names, whatever role it claims.
    let external = Claims {
        iss: Some("communication-master".into()),
        aud: None,
        generation: None,
        teams: Some(vec!["Customer".into()]),
        ..ghost.clone()
    };
    let token = sign(&external)?;
    assert_eq!(
        stack
            .call(Method::GET, "/api/executives", Some(&token), None)
            .await?
            .0,
        403
    );
    let mut dash = stack.connect(&token).await?;
    let theirs = dash
        .request("fetch_all_chats", json!({"customer_type": "Customer"}))
        .await?;
    assert_ne!(theirs["event"], "error", "{theirs}");
    let not_theirs = dash
        .request("fetch_all_chats", json!({"customer_type": "Partner"}))
        .await?;
    assert_eq!(not_theirs["data"]["code"], "forbidden");
    dash.close().await;
    // …for a bounded time only.
    let long_lived = Claims {
        exp: external.iat + 86_400,
        ..external
    };
    let token = sign(&long_lived)?;
    assert_eq!(
        stack
            .call(Method::GET, "/api/dashboard/stats", Some(&token), None)
            .await?
            .0,
        401
    );
    stack.stop().await;
    Ok(())
}
