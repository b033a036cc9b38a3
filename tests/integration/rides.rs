//! Rides in chat lists (the next ride on each chat; customers riding soon
//! first, with whole pages either way) and the hourly booking alerts, once
//! per ride and recipient.

use chrono::{Duration, Utc};
use domain::secret::Secret;
use serde_json::{Value, json};
use smart_chat_tests::*;

const TOKEN: &str = "internal-token-for-rides";

async fn booking(
    stack: &Stack,
    customer: &str,
    booking_id: &str,
    in_minutes: i64,
    status: &str,
) -> anyhow::Result<()> {
    let at = Utc::now() + Duration::minutes(in_minutes);
    let body = json!({"event": "created", "customer_number": customer, "booking_id": booking_id,
        "ride_datetime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "ride_status": status});
    let res = stack
        .http
        .post(stack.url("/api/webhook/booking"))
        .header("x-internal-token", TOKEN)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(res.status() == 200, "booking answered {}", res.status());
    Ok(())
}

async fn start() -> anyhow::Result<Stack> {
    Stack::start_with(|c| c.internal_token = Some(Secret::new(TOKEN.into()))).await
}

#[tokio::test]
async fn customers_riding_soon_come_first_and_pages_stay_whole() -> anyhow::Result<()> {
    let stack = start().await?;
    // Seven customers write, c0 first and c6 last.
    let numbers: Vec<String> = (0..7).map(|i| format!("91977700000{i}")).collect();
    for (i, n) in numbers.iter().enumerate() {
        stack
            .customer_writes(PARTNER_CHANNEL, n, &format!("wamid.ride-{i}"), "hello")
            .await?;
    }
    // c3 is on the road, c1 rides in two hours, c5 in ten (not soon: the
    // window is three hours), c2's ride is over.
    booking(&stack, &numbers[3], "BK-3", -60, "ongoing").await?;
    booking(&stack, &numbers[1], "BK-1", 120, "upcoming").await?;
    booking(&stack, &numbers[5], "BK-5", 600, "upcoming").await?;
    booking(&stack, &numbers[2], "BK-2", -120, "completed").await?;

    let admin = stack.admin_token().await?;
    let mut dash = stack.connect(&admin).await?;
    let mut order: Vec<Value> = Vec::new();
    let mut rides: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut req = json!({"customer_type": "Partner", "page_size": 2});
        if let Some(c) = &cursor {
            req["cursor"] = json!(c);
        }
        let page = dash.request("fetch_all_chats", req).await?;
        order.extend(chats_field(&page, "customer"));
        rides.extend(chats_field(&page, "next_ride"));
        cursor = page["data"]["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let want: Vec<Value> = [3, 1, 6, 5, 4, 2, 0]
        .iter()
        .map(|i| json!(numbers[*i]))
        .collect();
    assert_eq!(
        order, want,
        "riding soon first, then by activity; each once"
    );
    assert_eq!(rides[0]["booking_id"], "BK-3");
    assert_eq!(rides[0]["ride_status"], "ongoing");
    assert_eq!(rides[1]["booking_id"], "BK-1");
    assert_eq!(
        rides[3]["booking_id"], "BK-5",
        "a later ride is shown, not sorted"
    );
    assert_eq!(rides[5], Value::Null, "a completed ride is no next ride");
    assert!(rides[1]["ride_datetime_ist"].is_string());

    // Offset pages see the same list.
    let page2 = dash
        .request(
            "fetch_all_chats",
            json!({"customer_type": "Partner", "page_size": 2, "page": 2}),
        )
        .await?;
    assert_eq!(
        chats_field(&page2, "customer"),
        vec![json!(numbers[6]), json!(numbers[5])]
    );

    // The ride ends: c1 goes back to its place by activity.
    let ended = json!({"event": "modified", "customer_number": numbers[1], "booking_id": "BK-1",
        "ride_datetime": (Utc::now() + Duration::minutes(120)).to_rfc3339(), "ride_status": "cancelled"});
    let res = stack
        .http
        .post(stack.url("/api/webhook/booking"))
        .header("x-internal-token", TOKEN)
        .json(&ended)
        .send()
        .await?;
    assert_eq!(res.status(), 200);
    let first = dash
        .request(
            "fetch_all_chats",
            json!({"customer_type": "Partner", "page_size": 3}),
        )
        .await?;
    assert_eq!(
        chats_field(&first, "customer"),
        vec![json!(numbers[3]), json!(numbers[6]), json!(numbers[5])]
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn booking_alerts_go_out_once_per_ride_and_recipient() -> anyhow::Result<()> {
    let stack = start().await?;
    let admin = stack.admin_token().await?;
    let (status, shown) = stack
        .call(
            reqwest::Method::GET,
            "/api/automations/rides",
            Some(&admin),
            None,
        )
        .await?;
    assert_eq!(status, 200, "{shown}");
    let mut settings = shown["data"]["settings"].clone();
    settings["alerts"]["recipients"] = json!(["98765 43210", "+919812345678"]);
    // Refused: a template that is not a staff template, an unknown channel.
    for (field, value) in [("template", "resolution_rating"), ("channel", "1234567890")] {
        let mut bad = settings.clone();
        bad["alerts"][field] = json!(value);
        let (status, body) = stack
            .call(
                reqwest::Method::PUT,
                "/api/automations/rides",
                Some(&admin),
                Some(bad),
            )
            .await?;
        assert_eq!(status, 400, "{field}: {body}");
    }
    let (status, saved) = stack
        .call(
            reqwest::Method::PUT,
            "/api/automations/rides",
            Some(&admin),
            Some(settings),
        )
        .await?;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        saved["data"]["settings"]["alerts"]["recipients"],
        json!(["919812345678", "919876543210"])
    );

    booking(&stack, "9811100001", "BK-SOON", 30, "upcoming").await?;
    booking(&stack, "9811100002", "BK-LATER", 90, "upcoming").await?;
    booking(&stack, "9811100003", "BK-FAR", 300, "upcoming").await?;
    booking(&stack, "9811100004", "BK-OFF", 30, "cancelled").await?;
    booking(&stack, "9811100005", "BK-ROAD", -10, "ongoing").await?;

    let report = stack.run_schedule("booking-alerts").await?;
    assert_eq!(report["rides"], 2, "{report}");
    assert_eq!(report["alerts"], 4, "{report}");
    stack.settled().await?;
    let alerts: Vec<Value> = stack
        .recorded()
        .await?
        .into_iter()
        .filter(|r| r["body"]["template"]["name"] == "booking_alert")
        .collect();
    assert_eq!(alerts.len(), 4, "{alerts:?}");
    let mut pairs: Vec<(String, String)> = alerts
        .iter()
        .map(|r| {
            let params = &r["body"]["template"]["components"][0]["parameters"];
            (
                r["body"]["to"].as_str().unwrap_or("").to_owned(),
                params[2]["text"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("919812345678", "BK-LATER"),
            ("919812345678", "BK-SOON"),
            ("919876543210", "BK-LATER"),
            ("919876543210", "BK-SOON"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );

    // The next hour's run (or a retried one) alerts nobody twice.
    let again = stack.run_schedule("booking-alerts").await?;
    assert_eq!(
        (again["alerts"].clone(), again["already"].clone()),
        (json!(0), json!(4))
    );
    stack.settled().await?;
    let count = stack
        .recorded()
        .await?
        .iter()
        .filter(|r| r["body"]["template"]["name"] == "booking_alert")
        .count();
    assert_eq!(count, 4);
    stack.stop().await;
    Ok(())
}
