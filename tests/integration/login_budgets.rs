//! Login guessing budgets: bounded per address × source, per source and
//! per address, consumed before any hash, and never a way to keep the
//! owner out.

use std::net::{IpAddr, Ipv4Addr};

use domain::auth::login::{PER_ADDRESS_AND_SOURCE, PER_ADDRESS_UNTRUSTED, PER_SOURCE};
use serde_json::{Value, json};
use smart_chat_tests::*;

fn source(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn login(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

#[tokio::test]
async fn a_flood_from_other_sources_does_not_stop_the_owner() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let owner = source(1);
    // The owner logged in on this device before: it keeps a device token.
    let (status, first) = stack
        .login_from(owner, login(ADMIN_EMAIL, ADMIN_PASSWORD))
        .await?;
    assert_eq!(status, 200, "{first}");
    let device = first["device_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!device.is_empty(), "{first}");

    // Others guess from many sources, each until its own budget is spent.
    let mut refused = 0;
    let mut sources = 0;
    let mut last = 10u8;
    while refused == 0 || sources < 2 {
        let attacker = source(last);
        for _ in 0..PER_ADDRESS_AND_SOURCE {
            let (status, answer) = stack
                .login_from(attacker, login(ADMIN_EMAIL, "guess"))
                .await?;
            assert!(status == 401 || status == 429, "{status} {answer}");
        }
        let (status, _) = stack
            .login_from(attacker, login(ADMIN_EMAIL, "guess"))
            .await?;
        assert_eq!(
            status, 429,
            "a source's own budget is {PER_ADDRESS_AND_SOURCE}"
        );
        sources += 1;
        last += 1;
        if sources == 2 {
            // Two sources have spent theirs: the owner from their own
            // source, with no device token, still gets in.
            let (status, answer) = stack
                .login_from(owner, login(ADMIN_EMAIL, ADMIN_PASSWORD))
                .await?;
            assert_eq!(status, 200, "{answer}");
        }
        let (probe, _) = stack
            .login_from(source(last), login(ADMIN_EMAIL, "guess"))
            .await?;
        last += 1;
        if probe == 429 {
            refused += 1;
        }
        assert!(last < 60, "the address's budget never ran out");
    }
    // The address's untrusted budget is spent: guesses from anywhere new
    // are refused before any password check…
    let attempts = u32::from(last - 10);
    assert!(attempts > PER_ADDRESS_UNTRUSTED / PER_ADDRESS_AND_SOURCE);
    let (status, answer) = stack
        .login_from(source(200), login(ADMIN_EMAIL, ADMIN_PASSWORD))
        .await?;
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "too_many_attempts");
    // …and the owner on their device is not.
    let (status, answer) = stack
        .login_from(
            source(201),
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "device": device}),
        )
        .await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["device_token"], device.as_str());
    // A device token is bound to its address: it buys nothing elsewhere.
    let (status, _) = stack
        .login_from(
            source(202),
            json!({"email": "ghost@test.local", "password": "x", "device": device}),
        )
        .await?;
    assert_eq!(status, 401);
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn parallel_attempts_beyond_the_budget_are_refused_before_any_hash() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let attacker = source(7);
    let n = 4 * PER_ADDRESS_AND_SOURCE as usize;
    let attempts = (0..n).map(|_| stack.login_from(attacker, login(ADMIN_EMAIL, "guess")));
    let results = futures_util::future::join_all(attempts).await;
    let mut statuses = Vec::new();
    for r in results {
        statuses.push(r?.0);
    }
    let wrong = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (wrong, refused),
        (
            PER_ADDRESS_AND_SOURCE as usize,
            n - PER_ADDRESS_AND_SOURCE as usize
        ),
        "{statuses:?}"
    );
    // One source guessing many addresses is bounded too.
    let mut statuses = Vec::new();
    for i in 0..PER_SOURCE {
        let (s, _) = stack
            .login_from(source(8), login(&format!("user{i}@test.local"), "guess"))
            .await?;
        statuses.push(s);
    }
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let (s, _) = stack
        .login_from(source(8), login("one-more@test.local", "guess"))
        .await?;
    assert_eq!(s, 429);
    stack.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_answer_never_says_whether_an_address_exists() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let mut answers = Vec::new();
    for (i, email) in [ADMIN_EMAIL, "nobody@test.local", "not an address at all"]
        .into_iter()
        .enumerate()
    {
        // Fewest requests over three tries: background work only adds.
        let mut runs = Vec::new();
        for t in 0..3u8 {
            let attempt =
                stack.login_from(source(20 + 3 * i as u8 + t), login(email, "wrong password"));
            runs.push(stack.measured(attempt).await?);
        }
        let last = runs
            .last()
            .map(|(answer, _)| answer.clone())
            .unwrap_or_default();
        let cost = fewest(runs).map(|(_, spent)| spent);
        answers.push((last, cost.unwrap_or_default()));
    }
    let (known, unknown, malformed) = (&answers[0], &answers[1], &answers[2]);
    assert_eq!(known.0.0, 401);
    assert_eq!(known.0, unknown.0, "same status and body");
    assert_eq!(known.0, malformed.0, "same status and body");
    assert_eq!(known.1, unknown.1, "same store requests");
    assert_eq!(known.1, malformed.1, "same store requests");
    // Three budgets spent, two reads.
    assert_eq!(
        known.1,
        [("GetItem".to_owned(), 2), ("UpdateItem".to_owned(), 3)].into()
    );
    stack.stop().await;
    Ok(())
}
