use aws_sdk_dynamodb::types::AttributeValue;
use domain::secret::Secret;
use serde_json::{Value, json};
use smart_chat_tests::*;

const TOKEN: &str = "internal-token-for-tests";

async fn post(
    stack: &Stack,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let mut req = stack.http.post(stack.url(path)).json(&body);
    if let Some(t) = token {
        req = req.header("x-internal-token", t);
    }
    let res = req.send().await?;
    Ok((res.status().as_u16(), res.json().await?))
}

async fn item(
    stack: &Stack,
    pk: &str,
    sk_prefix: &str,
) -> anyhow::Result<Vec<std::collections::HashMap<String, AttributeValue>>> {
    let table = stack.running.resources.table("CustomersTable")?;
    let out = stack
        .running
        .dynamo
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
        .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
        .expression_attribute_values(":sk", AttributeValue::S(sk_prefix.into()))
        .send()
        .await?;
    Ok(out.items.unwrap_or_default())
}

fn s<'a>(item: &'a std::collections::HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

#[tokio::test]
async fn internal_webhooks_need_the_internal_token() -> anyhow::Result<()> {
    let stack = Stack::start_with(|c| c.internal_token = Some(Secret::new(TOKEN.into()))).await?;
    let body = json!({"mobile": "9812345678", "dco_status": "Active"});
    for path in [
        "/api/webhook/user/update",
        "/api/webhook/booking",
        "/api/webhook/context_change",
    ] {
        assert_eq!(
            post(&stack, path, None, body.clone()).await?.0,
            401,
            "{path}"
        );
        assert_eq!(
            post(&stack, path, Some("wrong"), body.clone()).await?.0,
            401,
            "{path}"
        );
    }
    assert!(
        item(&stack, "CUSTOMER#919812345678", "PROFILE")
            .await?
            .is_empty()
    );
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn profiles_bookings_and_context_changes_are_validated_and_kept() -> anyhow::Result<()> {
    let stack = Stack::start_with(|c| c.internal_token = Some(Secret::new(TOKEN.into()))).await?;

    // Profile: partial upserts accumulate.
    let (code, _) = post(
        &stack,
        "/api/webhook/user/update",
        Some(TOKEN),
        json!({"mobile": "9812345678", "documents_status": "Pending"}),
    )
    .await?;
    assert_eq!(code, 200);
    let (code, _) = post(
        &stack,
        "/api/webhook/user/update",
        Some(TOKEN),
        json!({"mobile": "9812345678", "dco_status": "Active", "in_journey_status": true}),
    )
    .await?;
    assert_eq!(code, 200);
    let profile = item(&stack, "CUSTOMER#919812345678", "PROFILE").await?;
    assert_eq!(s(&profile[0], "documents_status"), Some("Pending"));
    assert_eq!(s(&profile[0], "dco_status"), Some("Active"));
    assert_eq!(
        profile[0].get("in_journey_status"),
        Some(&AttributeValue::Bool(true))
    );

    // Booking: created, then cancelled.
    let booking = json!({"event": "created", "customer_number": "9638120888", "booking_id": "BK123456",
                         "ride_datetime": "2026-02-20T14:30:00Z", "ride_status": "upcoming"});
    assert_eq!(
        post(&stack, "/api/webhook/booking", Some(TOKEN), booking.clone())
            .await?
            .0,
        200
    );
    let mut cancelled = booking.clone();
    cancelled["event"] = json!("cancelled");
    assert_eq!(
        post(&stack, "/api/webhook/booking", Some(TOKEN), cancelled)
            .await?
            .0,
        200
    );
    let rides = item(&stack, "CUSTOMER#919638120888", "RIDE#").await?;
    assert_eq!(rides.len(), 1, "one item per booking");
    assert_eq!(s(&rides[0], "ride_status"), Some("cancelled"));
    assert_eq!(
        s(&rides[0], "ride_datetime"),
        Some("2026-02-20T14:30:00.000Z")
    );

    // Context change: kept for the lifecycle.
    let change = json!({"customer": "9638120888", "customer_type": "Partner", "context": {"documents_status": "Approved"}});
    assert_eq!(
        post(&stack, "/api/webhook/context_change", Some(TOKEN), change)
            .await?
            .0,
        200
    );
    let changes = item(&stack, "CUSTOMER#919638120888", "CONTEXT#").await?;
    assert_eq!(changes.len(), 1);
    assert_eq!(s(&changes[0], "customer_type"), Some("Partner"));
    assert_eq!(
        s(&changes[0], "context"),
        Some(r#"{"documents_status":"Approved"}"#)
    );

    // Field-level errors, nothing stored.
    let cases = [
        (
            "/api/webhook/user/update",
            json!({"mobile": "12ab"}),
            vec!["body", "mobile"],
        ),
        (
            "/api/webhook/booking",
            json!({"event": "teleported", "customer_number": "9638120888", "booking_id": "", "ride_datetime": "soon", "ride_status": "flying"}),
            vec!["booking_id", "event", "ride_datetime", "ride_status"],
        ),
        (
            "/api/webhook/context_change",
            json!({"customer": "9638120888", "customer_type": "Martian", "context": {"nested": {"no": 1}}}),
            vec!["context.nested", "customer_type"],
        ),
        (
            "/api/webhook/context_change",
            json!("just a string"),
            vec!["body"],
        ),
    ];
    for (path, body, fields) in cases {
        let (code, answer) = post(&stack, path, Some(TOKEN), body).await?;
        assert_eq!(code, 400, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_payload");
        let got: Vec<_> = answer["error"]["fields"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(got, fields, "{path}: {answer}");
    }
    let res = stack
        .http
        .post(stack.url("/api/webhook/booking"))
        .header("x-internal-token", TOKEN)
        .body("{oops")
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(
        item(&stack, "CUSTOMER#919638120888", "CONTEXT#")
            .await?
            .len(),
        1
    );
    stack.stop().await;
    Ok(())
}
