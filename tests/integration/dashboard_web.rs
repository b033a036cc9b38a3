//! The agents' dashboard in a real headless Chromium against the local
//! stack: log in, a WhatsApp message appears in the list, the agent opens
//! it and answers; customer text is shown as text, never run.

use std::time::Duration;

use serde_json::{Value, json};
use smart_chat_tests::browser::Browser;
use smart_chat_tests::*;

const HOSTILE: &str = "Namaste 🙏 <img src=x onerror=alert(1)> javascript:alert(2)";

/// Logs `email` in through the page and waits for the list.
async fn log_in_as(
    browser: &Browser,
    stack: &Stack,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    browser.goto(&stack.url("/")).await?;
    let field = browser.find("#email", Duration::from_secs(10)).await?;
    browser.type_into(&field, email).await?;
    let field = browser.find("#password", Duration::from_secs(1)).await?;
    browser.type_into(&field, password).await?;
    let submit = browser
        .find("#login-form button[type=submit]", Duration::from_secs(1))
        .await?;
    browser.click(&submit).await?;
    // Logged in and connected: the list has loaded (its count shows).
    browser
        .until(
            "return !document.getElementById('app').hidden \
             && document.getElementById('list-end').textContent.includes('chat')",
            Duration::from_secs(15),
        )
        .await?;
    Ok(())
}

async fn log_in(browser: &Browser, stack: &Stack) -> anyhow::Result<()> {
    log_in_as(browser, stack, ADMIN_EMAIL, ADMIN_PASSWORD).await
}

/// Whether `script` (an expression) is true in the page within 10 s.
async fn shows(browser: &Browser, script: &str) -> anyhow::Result<Value> {
    browser
        .until(&format!("return {script}"), Duration::from_secs(10))
        .await
}

#[tokio::test]
async fn an_agent_answers_a_customer_in_the_browser_and_a_teammate_sees_the_note()
-> anyhow::Result<()> {
    // Alerts after one second of waiting, so the scan raises one at once.
    let sla =
        domain::routing::sla::SlaSettings::new(1, 600, None, None).map_err(anyhow::Error::msg)?;
    let stack = Stack::start_with(|c| c.sla = sla).await?;
    let browser = Browser::start().await?;
    let outcome = agent_flow(&stack, &browser).await;
    let outcome = browser.saving_failure("agent_flow", outcome).await;
    browser.quit().await;
    stack.stop().await;
    outcome
}

async fn agent_flow(stack: &Stack, browser: &Browser) -> anyhow::Result<()> {
    log_in(browser, stack).await?;

    // The page came with its security headers.
    let page = stack.http.get(stack.url("/")).send().await?;
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");

    // A customer writes: the chat appears in the list by itself, with its
    // unseen badge and the SLA countdown.
    let posted = std::time::Instant::now();
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook("919812300001", "रमेश", "wamid.web-1", HOSTILE),
        )
        .await?;
    let item = browser
        .find("#chats li[data-chat]", Duration::from_secs(10))
        .await?;
    let listed_after = posted.elapsed();
    let text = browser.text(&item).await?;
    assert!(text.contains("रमेश"), "{text}");
    assert!(
        text.contains("<img src=x onerror=alert(1)>"),
        "the preview is text: {text}"
    );
    shows(
        browser,
        "document.querySelector('#chats li .badge')?.textContent === '1'",
    )
    .await?;
    shows(browser, "!!document.querySelector('#chats li .sla')").await?;
    eprintln!("webhook to list item in the browser: {listed_after:?}");

    // Unanswered past the SLA: the alert look.
    let alerted = eventually(Duration::from_secs(10), || async {
        let report = stack.run_schedule("sla-scan").await?;
        Ok((report["alerts"].as_u64().unwrap_or(0) > 0).then_some(report))
    })
    .await?;
    assert_eq!(alerted["alerts"], 1);
    shows(browser, "!!document.querySelector('#chats li.alert')").await?;

    // Opened: the badge clears; the message shows literally; nothing it
    // says became markup.
    browser
        .click_on("#chats li[data-chat]", Duration::from_secs(5))
        .await?;
    let shown = shows(
        browser,
        "(document.querySelector('#messages .msg.in') || {}).textContent",
    )
    .await?;
    assert!(
        shown.as_str().unwrap_or_default().contains(HOSTILE),
        "{shown}"
    );
    shows(browser, "!document.querySelector('#chats li .badge')").await?;
    let injected = browser
        .run(
            "return document.querySelectorAll('#messages img, #chats img, a[href^=\"javascript\"]').length",
            json!([]),
        )
        .await?;
    assert_eq!(injected, json!(0));

    // The agent answers from the composer; it goes out to the customer,
    // and its tick moves to delivered on the provider's callback.
    let compose = browser.find("#compose", Duration::from_secs(5)).await?;
    browser
        .type_into(&compose, "Ji, checking your payout now")
        .await?;
    let send = browser
        .find(".composer button[type=submit]", Duration::from_secs(1))
        .await?;
    browser.click(&send).await?;
    let sent = eventually(Duration::from_secs(15), || async {
        let recorded = stack.recorded().await?;
        Ok(recorded
            .into_iter()
            .find(|r| r["body"]["to"] == "919812300001")
            .map(|r| r["body"].clone()))
    })
    .await?;
    assert_eq!(sent["text"]["body"], "Ji, checking your payout now");
    let chat_id = browser
        .run(
            "return document.querySelector('#chats li.current').dataset.chat",
            json!([]),
        )
        .await?;
    let chat_id = domain::chat::ChatId::parse(chat_id.as_str().unwrap_or_default())
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let wa_id = eventually(Duration::from_secs(10), || async {
        let (messages, _) =
            domain::chat::ChatStore::messages(&stack.store(), &chat_id, None, 0, 10).await?;
        Ok(messages
            .into_iter()
            .find(|m| m.direction == domain::chat::Direction::Outbound)
            .and_then(|m| m.wa_message_id))
    })
    .await?;
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &status_webhook(&wa_id, "919812300001", "delivered", json!([])),
        )
        .await?;
    shows(
        browser,
        "[...document.querySelectorAll('#messages .msg.out .ticks')].some(t => t.textContent.includes('✓✓'))",
    )
    .await?;
    browser
        .screenshot(&workspace().join("target/dashboard.png"))
        .await?;

    // A note: a teammate's browser sees it; the customer never does.
    stack
        .add_executive(
            "priya",
            "priya@test.local",
            "priya-password-1",
            domain::executive::Role::Agent,
            &[domain::channel::Stakeholder::Partner],
            false,
        )
        .await?;
    let teammate = Browser::start().await?;
    let seen = async {
        log_in_as(&teammate, stack, "priya@test.local", "priya-password-1").await?;
        teammate
            .click_on("#chats li[data-chat]", Duration::from_secs(10))
            .await?;
        shows(&teammate, "!!document.querySelector('#messages .msg.in')").await?;
        let compose = browser.find("#compose", Duration::from_secs(1)).await?;
        browser.type_into(&compose, "Payout due Monday").await?;
        let note = browser.find("#add-note", Duration::from_secs(1)).await?;
        browser.click(&note).await?;
        shows(
            &teammate,
            "[...document.querySelectorAll('#messages .msg.note')].some(m => m.textContent.includes('Payout due Monday'))",
        )
        .await
    }
    .await;
    let seen = teammate.saving_failure("teammate_note", seen).await;
    teammate.quit().await;
    seen?;
    stack.settled().await?;
    let to_customer = stack
        .recorded()
        .await?
        .iter()
        .filter(|r| r["body"]["to"] == "919812300001")
        .count();
    assert_eq!(to_customer, 1, "the note was not sent");

    // Resolving moves the counters.
    shows(
        browser,
        "document.getElementById('teams').textContent.includes('Resolved 0')",
    )
    .await?;
    browser
        .run(
            "[...document.querySelectorAll('.chat-head button')].find(b => b.textContent === 'Resolve').click()",
            json!([]),
        )
        .await?;
    shows(
        browser,
        "document.getElementById('teams').textContent.includes('Resolved 1')",
    )
    .await?;
    // …for the team too (active · pending · resolved).
    shows(
        browser,
        "document.querySelector('#teams [data-team=Partner]')?.textContent === 'Partner 0 · 0 · 1'",
    )
    .await?;

    // A chat whose customer has not written for 24 hours (here: never)
    // offers templates before anyone types.
    let mut dash = stack.connect(&stack.admin_token().await?).await?;
    let opened = dash
        .request(
            "new_chat",
            json!({"sender": "919812300009", "customer_type": "Partner"}),
        )
        .await?;
    let quiet_chat = opened["data"]["chat"]["chat_id"].clone();
    assert!(quiet_chat.is_string(), "{opened}");
    browser
        .click_on(
            &format!("#chats li[data-chat={quiet_chat}]"),
            Duration::from_secs(10),
        )
        .await?;
    shows(
        browser,
        "[...document.querySelectorAll('.window-closed option')].some(o => o.value === 'ask_issue_resolved')",
    )
    .await?;

    // Log out: back to the login page, the session forgotten; a stale
    // token on reload lands on the login page too.
    let logout = browser.find("#logout", Duration::from_secs(1)).await?;
    browser.click(&logout).await?;
    let token: Value = browser
        .run(
            "return sessionStorage.getItem('smartchat.token')",
            json!([]),
        )
        .await?;
    assert_eq!(token, Value::Null);
    browser
        .run(
            "sessionStorage.setItem('smartchat.token', 'expired.or.forged')",
            json!([]),
        )
        .await?;
    browser.goto(&stack.url("/")).await?;
    shows(browser, "!document.getElementById('login').hidden && document.getElementById('login-error').textContent.includes('session')").await?;
    Ok(())
}

#[tokio::test]
async fn admins_tag_assign_manage_the_team_and_read_the_bot_at_phone_width() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let browser = Browser::start_sized(390, 844).await?;
    log_in(&browser, &stack).await?;
    let chat = stack
        .customer_writes(
            PARTNER_CHANNEL,
            "919812300002",
            "wamid.web-2",
            "नमस्ते, payout?",
        )
        .await?;
    let item = browser
        .find("#chats li[data-chat]", Duration::from_secs(10))
        .await?;
    browser.click(&item).await?;

    // Tag it from the chat's header.
    browser
        .until(
            "const s = document.querySelector('.chat-head select[aria-label=\"Add a tag\"]'); \
             if (!s || s.options.length < 2) return false; \
             s.value = s.options[1].value; s.dispatchEvent(new Event('change')); return s.value",
            Duration::from_secs(10),
        )
        .await?;
    let tagged = eventually(Duration::from_secs(10), || async {
        let c = stack.chat(&chat.chat_id).await?;
        Ok((!c.tags.is_empty()).then_some(c.tags))
    })
    .await?;
    browser
        .until(
            &format!(
                "return document.querySelector('.chat-head').textContent.includes({})",
                json!(tagged[0])
            ),
            Duration::from_secs(5),
        )
        .await?;

    // The admin pages: the team (the dev admin listed), a new agent added.
    let admin = browser.find("#admin-open", Duration::from_secs(5)).await?;
    browser.click(&admin).await?;
    browser
        .until(
            &format!(
                "return document.querySelector('.admin-body table')?.textContent.includes({})",
                json!(ADMIN_EMAIL)
            ),
            Duration::from_secs(10),
        )
        .await?;
    browser
        .run(
            "const f = document.querySelector('.admin-body form.row'); \
             const [name, email, password] = f.querySelectorAll('input'); \
             name.value = 'Asha'; email.value = 'asha@test.local'; password.value = 'a-long-password'; \
             f.querySelector('input[type=checkbox][value=Partner]').checked = true; \
             f.requestSubmit();",
            json!([]),
        )
        .await?;
    browser
        .until(
            "return document.querySelector('.admin-body table')?.textContent.includes('asha@test.local')",
            Duration::from_secs(10),
        )
        .await?;
    // The discount bot's routes, with the one real code.
    let tab = browser
        .find(".tabs button[data-page=Discount]", Duration::from_secs(2))
        .await?;
    browser.click(&tab).await?;
    browser
        .until(
            "return document.querySelector('.admin-body')?.textContent.includes('TRUST4111')",
            Duration::from_secs(10),
        )
        .await?;

    // At phone width the list is still there and usable.
    let width: Value = browser
        .run(
            "return document.getElementById('chats').getBoundingClientRect().width",
            json!([]),
        )
        .await?;
    assert!(width.as_f64().unwrap_or(0.0) > 300.0, "{width}");

    // Endless scroll: 24 more customers write; the list loads its second
    // page (20 a page) when scrolled to the end.
    for i in 0..24 {
        stack
            .post_webhook(
                PARTNER_CHANNEL,
                &text_webhook(
                    &format!("9198123100{i:02}"),
                    "Rider",
                    &format!("wamid.scroll-{i}"),
                    "hi",
                ),
            )
            .await?;
    }
    let ids: Vec<String> = (0..24).map(|i| format!("wamid.scroll-{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    wait_stored(&stack.store(), &refs).await?;
    // A fresh load starts from the first page.
    browser.goto(&stack.url("/")).await?;
    shows(
        &browser,
        "document.querySelectorAll('#chats li').length === 20",
    )
    .await?;
    browser
        .run(
            "const l = document.getElementById('chats'); l.scrollTop = l.scrollHeight; l.dispatchEvent(new Event('scroll'))",
            json!([]),
        )
        .await?;
    shows(
        &browser,
        "document.querySelectorAll('#chats li').length === 25",
    )
    .await?;

    // The dashboard's socket is closed under it (an admin changes this
    // admin's teams): it reconnects by itself and stays live.
    let me = stack.admin_token().await?;
    let (status, body) = stack
        .call(
            reqwest::Method::PATCH,
            "/api/executives/dev-admin",
            Some(&me),
            Some(json!({"stakeholders": ["Partner", "Customer"]})),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    shows(&browser, "document.body.dataset.connects === '2'").await?;
    shows(
        &browser,
        "document.getElementById('offline').hidden === true",
    )
    .await?;
    stack
        .post_webhook(
            PARTNER_CHANNEL,
            &text_webhook(
                "919812399999",
                "After Reconnect",
                "wamid.after",
                "still there?",
            ),
        )
        .await?;
    shows(
        &browser,
        "document.getElementById('chats').textContent.includes('After Reconnect')",
    )
    .await?;
    browser.quit().await;
    stack.stop().await;
    Ok(())
}
