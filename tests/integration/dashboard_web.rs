//! The agents' dashboard in a real headless Chromium against the local
//! stack: log in, a WhatsApp message appears in the list, the agent opens
//! it and answers; customer text is shown as text, never run.

use std::time::Duration;

use serde_json::{Value, json};
use smart_chat_tests::browser::Browser;
use smart_chat_tests::*;

const HOSTILE: &str = "Namaste 🙏 <img src=x onerror=alert(1)> javascript:alert(2)";

/// Logs the dev admin in through the page.
async fn log_in(browser: &Browser, stack: &Stack) -> anyhow::Result<()> {
    browser.goto(&stack.url("/")).await?;
    let email = browser.find("#email", Duration::from_secs(10)).await?;
    browser.type_into(&email, ADMIN_EMAIL).await?;
    let password = browser.find("#password", Duration::from_secs(1)).await?;
    browser.type_into(&password, ADMIN_PASSWORD).await?;
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

#[tokio::test]
async fn an_agent_logs_in_sees_a_message_arrive_and_answers_it_in_a_browser() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    let browser = Browser::start().await?;
    log_in(&browser, &stack).await?;

    // The page came with its security headers.
    let page = stack.http.get(stack.url("/")).send().await?;
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");

    // A customer writes: the chat appears in the list by itself.
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

    // Opened: the message shows literally; nothing it says became markup.
    browser.click(&item).await?;
    let shown = browser
        .until(
            "const m = document.querySelector('#messages .msg.in'); return m && m.textContent",
            Duration::from_secs(10),
        )
        .await?;
    assert!(
        shown.as_str().unwrap_or_default().contains(HOSTILE),
        "{shown}"
    );
    let injected = browser
        .run(
            "return document.querySelectorAll('#messages img, #chats img, a[href^=\"javascript\"]').length",
            json!([]),
        )
        .await?;
    assert_eq!(injected, json!(0));

    // The agent answers from the composer; it goes out to the customer.
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
    // …and shows in the conversation with its delivery state.
    browser
        .until(
            "return [...document.querySelectorAll('#messages .msg.out')].some(m => m.textContent.includes('checking your payout'))",
            Duration::from_secs(10),
        )
        .await?;
    eprintln!("webhook to list item in the browser: {listed_after:?}");

    // A note for teammates: shown in the conversation, never sent.
    let compose = browser.find("#compose", Duration::from_secs(1)).await?;
    browser.type_into(&compose, "Payout due Monday").await?;
    let note = browser.find("#add-note", Duration::from_secs(1)).await?;
    browser.click(&note).await?;
    browser
        .until(
            "return [...document.querySelectorAll('#messages .msg.note')].some(m => m.textContent.includes('Payout due Monday'))",
            Duration::from_secs(10),
        )
        .await?;
    stack.settled().await?;
    let to_customer = stack
        .recorded()
        .await?
        .iter()
        .filter(|r| r["body"]["to"] == "919812300001")
        .count();
    assert_eq!(to_customer, 1, "the note was not sent");

    // Log out: back to the login page, the session forgotten.
    let logout = browser.find("#logout", Duration::from_secs(1)).await?;
    browser.click(&logout).await?;
    let token: Value = browser
        .run(
            "return sessionStorage.getItem('smartchat.token')",
            json!([]),
        )
        .await?;
    assert_eq!(token, Value::Null);
    browser.quit().await;
    stack.stop().await;
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
    browser.quit().await;
    stack.stop().await;
    Ok(())
}
