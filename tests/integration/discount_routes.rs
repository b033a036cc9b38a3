//! The discount bot's routes are data admins change: seeded from the file
//! on first use, listed with whether each is offered, created and replaced
//! through the admin API, with clear refusals.

use domain::channel::Stakeholder;
use serde_json::{Value, json};
use smart_chat_tests::*;

fn route<'a>(listed: &'a Value, id: &str) -> Option<&'a Value> {
    listed["data"]["routes"]
        .as_array()?
        .iter()
        .find(|r| r["route_id"] == id)
}

#[tokio::test]
async fn admins_list_create_and_replace_discount_routes() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let admin = stack.admin_token().await?;
    let list = || {
        stack.call(
            reqwest::Method::GET,
            "/api/discount/routes",
            Some(&admin),
            None,
        )
    };

    let (status, listed) = list().await?;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"]["routes"].as_array().map(Vec::len), Some(14));
    let pune_mumbai =
        route(&listed, "pune-to-mumbai").ok_or_else(|| anyhow::anyhow!("{listed}"))?;
    assert_eq!(pune_mumbai["offered"], true);
    assert_eq!(pune_mumbai["route"]["code"], "TRUST4111");
    let airport =
        route(&listed, "pune-to-mumbai-airport").ok_or_else(|| anyhow::anyhow!("{listed}"))?;
    assert_eq!(
        airport["offered"], false,
        "a placeholder code is never offered"
    );

    // The business gives the airport route its real code.
    let (status, replaced) = stack
        .call(
            reqwest::Method::PUT,
            "/api/discount/routes/pune-to-mumbai-airport",
            Some(&admin),
            Some(json!({"from": "Pune", "to": "Mumbai Airport", "price": 2099, "code": "AIRPORT2099"})),
        )
        .await?;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["data"]["offered"], true);
    // A new route; the same one again is a conflict.
    let goa = json!({"from": "Pune", "to": "Goa", "price": 5999, "code": "GOA5999"});
    let (status, created) = stack
        .call(
            reqwest::Method::POST,
            "/api/discount/routes",
            Some(&admin),
            Some(goa.clone()),
        )
        .await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data"]["route_id"], "pune-to-goa");
    let (status, again) = stack
        .call(
            reqwest::Method::POST,
            "/api/discount/routes",
            Some(&admin),
            Some(goa),
        )
        .await?;
    assert_eq!(
        (status, again["error"]["code"].clone()),
        (409, json!("route_exists")),
        "{again}"
    );
    // Switched off: listed, not offered.
    let (status, off) = stack
        .call(
            reqwest::Method::PUT,
            "/api/discount/routes/pune-to-mumbai",
            Some(&admin),
            Some(json!({"from": "Pune", "to": "Mumbai", "price": 2199, "code": "TRUST4111", "disabled": true})),
        )
        .await?;
    assert_eq!(status, 200, "{off}");

    let (_, listed) = list().await?;
    assert_eq!(listed["data"]["routes"].as_array().map(Vec::len), Some(15));
    let offered: Vec<&Value> = listed["data"]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["offered"] == true)
        .map(|r| &r["route_id"])
        .collect();
    assert_eq!(
        offered,
        vec![&json!("pune-to-goa"), &json!("pune-to-mumbai-airport")]
    );
    assert_eq!(
        route(&listed, "pune-to-mumbai-airport").map(|r| r["route"]["price"].clone()),
        Some(json!(2099))
    );

    // Refusals: bad data, a body naming another route, no such route, not an admin.
    for (method, path, body, want) in [
        (
            reqwest::Method::POST,
            "/api/discount/routes",
            json!({"from": "Pune", "to": "Goa 2", "price": 0, "code": "X123"}),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/discount/routes",
            json!({"from": "Pune", "to": "Nashik", "price": 999, "code": "lower case"}),
            400,
        ),
        (
            reqwest::Method::POST,
            "/api/discount/routes",
            json!({"from": "Pune", "to": "Nashik", "price": 999, "code": "NASHIK999", "extra": 1}),
            400,
        ),
        (
            reqwest::Method::PUT,
            "/api/discount/routes/pune-to-shirdi",
            json!({"from": "Pune", "to": "Goa", "price": 5999, "code": "GOA5999"}),
            400,
        ),
        (
            reqwest::Method::PUT,
            "/api/discount/routes/pune-to-kolkata",
            json!({"from": "Pune", "to": "Kolkata", "price": 9999, "code": "KOL9999"}),
            404,
        ),
    ] {
        let (status, answer) = stack.call(method, path, Some(&admin), Some(body)).await?;
        assert_eq!(status, want, "{path}: {answer}");
    }
    stack
        .online_agent("plain", &[Stakeholder::Partner], 5)
        .await?;
    let plain = stack.login("plain@test.local", "plain-password").await?;
    let (status, _) = stack
        .call(
            reqwest::Method::GET,
            "/api/discount/routes",
            Some(&plain),
            None,
        )
        .await?;
    assert_eq!(status, 403);
    stack.stop().await;
    Ok(())
}
