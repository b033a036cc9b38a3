//! Executives administration, login throttling and the ADMIN_TOKEN cache
//! routes, over real HTTP and WebSocket.

use std::time::Duration;

use domain::replies::{ResponseCache, reply_cache_key};
use domain::secret::Secret;
use reqwest::Method;
use serde_json::json;
use smart_chat_tests::*;

#[tokio::test]
async fn admins_manage_executives_and_disabling_cuts_access_everywhere() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;

    // Create an agent: validated field by field, unique e-mail.
    let (status, bad) = stack
        .call(
            Method::POST,
            "/api/executives",
            Some(&admin),
            Some(json!({"email": "nope", "password": "short", "role": "boss", "extra": 1})),
        )
        .await?;
    assert_eq!(status, 400);
    for field in ["email", "password", "role", "name", "extra"] {
        assert!(bad["error"]["fields"][field].is_string(), "{field}: {bad}");
    }
    let new_agent = json!({"name": "Meera", "email": "Meera@OneWay.Cab",
        "password": "meera-first-password", "stakeholders": ["Vendor"]});
    let (status, created) = stack
        .call(
            Method::POST,
            "/api/executives",
            Some(&admin),
            Some(new_agent.clone()),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["executive_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(created["data"]["email"], "meera@oneway.cab");
    assert_eq!(created["data"]["role"], "agent");
    assert!(created["data"].get("password_hash").is_none());
    let (status, dup) = stack
        .call(
            Method::POST,
            "/api/executives",
            Some(&admin),
            Some(new_agent),
        )
        .await?;
    assert_eq!(
        (status, dup["error"]["code"].clone()),
        (409, json!("email_taken"))
    );

    // Listed (admin first by e-mail), readable one by one, never with hashes.
    let (status, list) = stack
        .call(Method::GET, "/api/executives", Some(&admin), None)
        .await?;
    assert_eq!(status, 200);
    let emails: Vec<_> = list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["email"].clone())
        .collect();
    assert_eq!(emails, vec![json!(ADMIN_EMAIL), json!("meera@oneway.cab")]);
    assert!(!list.to_string().contains("argon2"));
    let (status, one) = stack
        .call(
            Method::GET,
            &format!("/api/executives/{id}"),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!((status, one["data"]["name"].clone()), (200, json!("Meera")));
    let (status, _) = stack
        .call(
            Method::GET,
            "/api/executives/nobody-here",
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 404);

    // The agent logs in; agents cannot use admin routes.
    let agent = stack
        .login("meera@oneway.cab", "meera-first-password")
        .await?;
    let (status, _) = stack
        .call(Method::GET, "/api/executives", Some(&agent), None)
        .await?;
    assert_eq!(status, 403);
    let (status, _) = stack
        .call(Method::GET, "/api/executives", None, None)
        .await?;
    assert_eq!(status, 401);

    // Renamed and given a new password: the new one works, the old one not.
    let (status, patched) = stack
        .call(
            Method::PATCH,
            &format!("/api/executives/{id}"),
            Some(&admin),
            Some(json!({"name": "Meera K", "password": "meera-second-password"})),
        )
        .await?;
    assert_eq!(
        (status, patched["data"]["name"].clone()),
        (200, json!("Meera K"))
    );
    assert!(
        stack
            .login("meera@oneway.cab", "meera-first-password")
            .await
            .is_err()
    );
    let agent = stack
        .login("meera@oneway.cab", "meera-second-password")
        .await?;

    // An admin cannot lock themselves out.
    let own = list["data"][0]["executive_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, refused) = stack
        .call(
            Method::DELETE,
            &format!("/api/executives/{own}"),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (409, json!("own_account"))
    );

    // Disabling: the open dashboard is closed, the token and the password
    // stop working, and reconnecting is refused.
    let mut dash = stack.connect(&agent).await?;
    assert_eq!(dash.request("config", json!({})).await?["event"], "config");
    let (status, disabled) = stack
        .call(
            Method::DELETE,
            &format!("/api/executives/{id}"),
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(
        (status, disabled["data"]["disabled"].clone()),
        (200, json!(true))
    );
    assert!(
        dash.closed_within(Duration::from_secs(5)).await,
        "socket closed"
    );
    let (status, _) = stack
        .call(Method::GET, "/api/dashboard/stats", Some(&agent), None)
        .await?;
    assert_eq!(status, 403);
    assert!(
        stack
            .login("meera@oneway.cab", "meera-second-password")
            .await
            .is_err()
    );
    assert!(stack.connect(&agent).await.is_err(), "handshake refused");

    // Re-enabled: back in.
    let (status, _) = stack
        .call(
            Method::PATCH,
            &format!("/api/executives/{id}"),
            Some(&admin),
            Some(json!({"disabled": false})),
        )
        .await?;
    assert_eq!(status, 200);
    stack
        .login("meera@oneway.cab", "meera-second-password")
        .await?;

    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_admin_token_clears_cached_replies() -> anyhow::Result<()> {
    let stack = Stack::start_with(|c| {
        c.admin_token = Some(Secret::new("cache-admin-token-for-tests".into()));
    })
    .await?;
    let store = stack.store();
    for message in ["Delhi to Agra", "Pune to Mumbai", "hi"] {
        store
            .put_cached(
                &reply_cache_key(message),
                "{\"reply\":1}",
                Duration::from_secs(1800),
            )
            .await?;
    }
    let post = |path: &'static str, token: Option<&'static str>, body: serde_json::Value| {
        let mut req = stack.http.post(stack.url(path)).json(&body);
        if let Some(t) = token {
            req = req.header("x-admin-token", t);
        }
        async move {
            let res = req.send().await?;
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await?;
            anyhow::Ok((status, body))
        }
    };
    assert_eq!(
        post("/api/chats/clear_cache", None, json!({})).await?.0,
        401
    );
    assert_eq!(
        post("/api/chats/clear_cache", Some("wrong"), json!({}))
            .await?
            .0,
        401
    );

    // One entry by its message…
    let (status, one) = post(
        "/api/chats/delete_cache",
        Some("cache-admin-token-for-tests"),
        json!({"message": "hi"}),
    )
    .await?;
    assert_eq!((status, one["deleted"].clone()), (200, json!(true)));
    assert_eq!(one["key"], "chat_response::hi");
    assert!(store.cached("chat_response::hi").await?.is_none());
    assert!(
        store
            .cached(&reply_cache_key("DELHI  to agra"))
            .await?
            .is_some()
    );
    let (_, again) = post(
        "/api/chats/delete_cache",
        Some("cache-admin-token-for-tests"),
        json!({"message": "hi"}),
    )
    .await?;
    assert_eq!(again["deleted"], false);
    let (status, _) = post(
        "/api/chats/delete_cache",
        Some("cache-admin-token-for-tests"),
        json!({"msg": "hi"}),
    )
    .await?;
    assert_eq!(status, 400);

    // …then everything.
    let (status, all) = post(
        "/api/chats/clear_cache",
        Some("cache-admin-token-for-tests"),
        json!({}),
    )
    .await?;
    assert_eq!((status, all["deleted"].clone()), (200, json!(2)));
    assert!(
        store
            .cached(&reply_cache_key("Pune to Mumbai"))
            .await?
            .is_none()
    );

    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn cache_routes_are_closed_without_an_admin_token() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let res = stack
        .http
        .post(stack.url("/api/chats/clear_cache"))
        .header("x-admin-token", "anything")
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 403);
    stack.stop().await;
    Ok(())
}
