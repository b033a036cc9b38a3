//! `fetch_all_chats` over a seeded set of a few hundred chats: every
//! filter, offset paging and cursor paging return exactly the chats a
//! model of the seed says they should.

use std::collections::HashSet;

use chrono::{Duration as Minutes, TimeZone, Utc};
use serde_json::{Value, json};

use domain::channel::{ChannelId, Stakeholder};
use domain::chat::ChatStore;
use domain::chat::tags::TagName;
use domain::chat::{Chat, ChatStatus};
use domain::customer::CustomerStore;
use domain::customer::ProfileUpdate;
use domain::customer::SenderId;
use domain::executive::ExecutiveId;
use smart_chat_tests::{Dashboard, Stack};

const CHATS: usize = 300;
const TEAMS: [(Stakeholder, &str); 4] = [
    (Stakeholder::Partner, "9099039188"),
    (Stakeholder::Customer, "8000247247"),
    (Stakeholder::Vendor, "9726724247"),
    (Stakeholder::Srdp, "9586924247"),
];

/// What the seed holds for chat `i`, and the profile of its customer.
struct Seeded {
    chat: Chat,
    documents: &'static str,
    dco: &'static str,
    in_journey: bool,
}

fn model() -> anyhow::Result<Vec<Seeded>> {
    let base = Utc
        .with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("bad base time"))?;
    let mut seeded = Vec::with_capacity(CHATS);
    for i in 0..CHATS {
        let (team, channel) = TEAMS[i % 4];
        let name = if i.is_multiple_of(10) {
            format!("Priya Sharma {i}")
        } else {
            format!("Driver {i}")
        };
        // i = 0 is the most recent; every chat a minute older than the last.
        let at = base - Minutes::minutes(i as i64);
        let mut chat = Chat::open(
            SenderId::parse(&format!("9190000{i:05}")).map_err(anyhow::Error::msg)?,
            Some(name),
            team,
            ChannelId::parse(channel)?,
            at,
        );
        if i.is_multiple_of(13) {
            chat.status = ChatStatus::Resolved;
        }
        if i.is_multiple_of(7) {
            chat.assigned_to = Some(ExecutiveId::parse("agent-a").map_err(anyhow::Error::msg)?);
        }
        seeded.push(Seeded {
            chat,
            documents: if i.is_multiple_of(3) {
                "Approved"
            } else {
                "Pending"
            },
            dco: if i.is_multiple_of(11) {
                "Suspend"
            } else {
                "Active"
            },
            in_journey: i % 8 == 4,
        });
    }
    Ok(seeded)
}

async fn seed(stack: &Stack, model: &[Seeded]) -> anyhow::Result<()> {
    let store = stack.store();
    let tag = TagName::parse("Payment Issue").map_err(anyhow::Error::msg)?;
    for (i, s) in model.iter().enumerate() {
        store.create_chat(&s.chat).await?;
        if i.is_multiple_of(5) {
            store.set_tag(&s.chat.chat_id, &tag, true).await?;
        }
        // Every other customer has a profile; the rest match no special filter.
        if i.is_multiple_of(2) {
            let body = json!({"mobile": s.chat.customer.as_str(), "documents_status": s.documents,
                "dco_status": s.dco, "in_journey_status": s.in_journey});
            let update = ProfileUpdate::parse(&body).map_err(|e| anyhow::anyhow!(e.summary()))?;
            store.upsert_profile(&update).await?;
        }
    }
    Ok(())
}

/// The ids the model expects, latest activity first.
fn expected(model: &[Seeded], keep: impl Fn(usize, &Seeded) -> bool) -> Vec<String> {
    model
        .iter()
        .enumerate()
        .filter(|(i, s)| keep(*i, s))
        .map(|(_, s)| s.chat.chat_id.to_string())
        .collect()
}

fn ids(reply: &Value) -> Vec<String> {
    reply["data"]["chats"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["chat_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Follows `next_cursor` from the first page of `query` to the end.
async fn all_by_cursor(dash: &mut Dashboard, query: Value) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut reply = dash.request("fetch_all_chats", query).await?;
    for _ in 0..100 {
        anyhow::ensure!(reply["event"] == "fetch_all_chats", "error: {reply}");
        out.extend(ids(&reply));
        let Some(cursor) = reply["data"]["next_cursor"].as_str().map(str::to_owned) else {
            anyhow::ensure!(reply["data"]["has_more"] == false, "more without a cursor");
            return Ok(out);
        };
        reply = dash
            .request("fetch_all_chats", json!({"cursor": cursor}))
            .await?;
    }
    anyhow::bail!("paging did not end")
}

/// Walks `page` 1, 2, … of `query` until `has_more` is false.
async fn all_by_page(dash: &mut Dashboard, query: Value) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for page in 1..=100 {
        let mut q = query.clone();
        q["page"] = json!(page);
        let reply = dash.request("fetch_all_chats", q).await?;
        anyhow::ensure!(reply["event"] == "fetch_all_chats", "error: {reply}");
        out.extend(ids(&reply));
        if reply["data"]["has_more"] == false {
            return Ok(out);
        }
    }
    anyhow::bail!("paging did not end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_and_paging_return_exactly_the_expected_chats() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let model = model()?;
    seed(&stack, &model).await?;
    let mut admin = stack.connect(&stack.admin_token().await?).await?;
    let active = |_: usize, s: &Seeded| s.chat.status == ChatStatus::Active;

    // The default list: the ten most recent active chats of every team.
    let first = admin.request("fetch_all_chats", json!({})).await?;
    let all_active = expected(&model, active);
    assert_eq!(ids(&first), all_active[..10].to_vec());
    assert_eq!(first["data"]["has_more"], true);
    assert_eq!(first["data"]["page"], 1);

    // Every page, by offset and by cursor: the whole list, once each.
    let by_page = all_by_page(&mut admin, json!({"page_size": 50})).await?;
    assert_eq!(by_page, all_active);
    let by_cursor = all_by_cursor(&mut admin, json!({"page_size": 37})).await?;
    assert_eq!(by_cursor, all_active);
    assert_eq!(
        by_cursor.iter().collect::<HashSet<_>>().len(),
        by_cursor.len()
    );

    // One team, resolved.
    let vendor_resolved = all_by_cursor(
        &mut admin,
        json!({"status": "resolved", "customer_type": "Vendor", "page_size": 5}),
    )
    .await?;
    assert_eq!(
        vendor_resolved,
        expected(&model, |_, s| s.chat.status == ChatStatus::Resolved
            && s.chat.customer_type == Stakeholder::Vendor)
    );
    assert!(!vendor_resolved.is_empty());

    // Search by part of the number (as typed, with + and spaces) and by name.
    let by_number = all_by_cursor(&mut admin, json!({"search": "+91 9000 0001"})).await?;
    assert_eq!(
        by_number,
        expected(&model, |i, s| active(i, s)
            && s.chat.customer.as_str().contains("9190000001"))
    );
    assert!(!by_number.is_empty());
    let by_name = all_by_cursor(&mut admin, json!({"search": "PRIYA"})).await?;
    assert_eq!(
        by_name,
        expected(&model, |i, s| active(i, s) && i.is_multiple_of(10))
    );
    assert!(!by_name.is_empty());

    // The seeds' special filters, from the customers' profiles.
    let profiled = |i: usize| i.is_multiple_of(2);
    for (filter, keep) in [
        (
            "Active_Approved",
            Box::new(|i: usize, s: &Seeded| {
                profiled(i) && s.documents == "Approved" && s.dco == "Active"
            }) as Box<dyn Fn(usize, &Seeded) -> bool>,
        ),
        (
            "Pending",
            Box::new(|i: usize, s: &Seeded| profiled(i) && s.documents == "Pending"),
        ),
        (
            "InJourney",
            Box::new(|i: usize, s: &Seeded| profiled(i) && s.in_journey),
        ),
        (
            "Suspend",
            Box::new(|i: usize, s: &Seeded| profiled(i) && s.dco == "Suspend"),
        ),
    ] {
        let got = all_by_cursor(
            &mut admin,
            json!({"customer_type": "Partner", "filter": filter, "page_size": 7}),
        )
        .await?;
        let want = expected(&model, |i, s| {
            active(i, s) && s.chat.customer_type == Stakeholder::Partner && keep(i, s)
        });
        assert_eq!(got, want, "filter {filter}");
        assert!(!want.is_empty(), "filter {filter} has something to find");
    }

    // Assignee and tag (any case), and everything combined.
    let mine = all_by_cursor(&mut admin, json!({"assigned_to": "agent-a"})).await?;
    assert_eq!(
        mine,
        expected(&model, |i, s| active(i, s) && i.is_multiple_of(7))
    );
    let nobody = all_by_page(&mut admin, json!({"assigned_to": "none", "page_size": 50})).await?;
    assert_eq!(nobody, expected(&model, |i, s| active(i, s) && i % 7 != 0));
    let tagged = all_by_cursor(&mut admin, json!({"tag": "payment ISSUE"})).await?;
    assert_eq!(
        tagged,
        expected(&model, |i, s| active(i, s) && i.is_multiple_of(5))
    );
    let combined = all_by_cursor(
        &mut admin,
        json!({"customer_type": "Partner", "filter": "Pending", "tag": "Payment Issue", "page_size": 2}),
    )
    .await?;
    assert_eq!(
        combined,
        expected(&model, |i, s| active(i, s)
            && s.chat.customer_type == Stakeholder::Partner
            && profiled(i)
            && s.documents == "Pending"
            && i.is_multiple_of(5))
    );

    // Chats carry their tags and assignee.
    let tagged_first = admin
        .request(
            "fetch_all_chats",
            json!({"tag": "Payment Issue", "assigned_to": "agent-a", "page_size": 1}),
        )
        .await?;
    assert_eq!(
        tagged_first["data"]["chats"][0]["tags"],
        json!(["Payment Issue"])
    );
    assert_eq!(tagged_first["data"]["chats"][0]["assigned_to"], "agent-a");

    // A cursor only continues the list it was issued for.
    let cursor = first["data"]["next_cursor"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    let same = admin
        .request(
            "fetch_all_chats",
            json!({"cursor": cursor, "status": "active"}),
        )
        .await?;
    assert_eq!(ids(&same), all_active[10..20].to_vec());
    for (data, needle) in [
        (
            json!({"cursor": cursor, "status": "resolved"}),
            "other filters",
        ),
        (json!({"cursor": cursor, "page": 3}), "not both"),
        (json!({"cursor": "forged"}), "not one this server issued"),
        (json!({"filter": "Asleep"}), "unknown filter"),
        (json!({"assigned_to": "no one at all"}), "assigned_to"),
        (json!({"search": "x".repeat(65)}), "search"),
    ] {
        let e = admin.request("fetch_all_chats", data.clone()).await?;
        assert_eq!(e["event"], "error", "{data}");
        assert_eq!(e["data"]["code"], "invalid_data", "{data}");
        let message = e["data"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{data}: {message}");
    }

    // An agent sees only their own team's chats.
    let mut vendor_agent = stack.connect_agent("vendor-1", Stakeholder::Vendor).await?;
    let theirs = all_by_cursor(&mut vendor_agent, json!({"page_size": 50})).await?;
    assert_eq!(
        theirs,
        expected(&model, |i, s| active(i, s)
            && s.chat.customer_type == Stakeholder::Vendor)
    );
    let refused = vendor_agent
        .request("fetch_all_chats", json!({"customer_type": "Partner"}))
        .await?;
    assert_eq!(refused["data"]["code"], "forbidden");

    stack.stop().await;
    Ok(())
}
