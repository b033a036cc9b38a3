//! Outbound messages over HTTP: `GET /api/chats/send_whatsapp_template`
//! (JWT), and for admins the message log (`GET /api/messages`), its
//! statistics (`GET /api/messages/stats`) and re-sending a failed message
//! (`POST /api/messages/{chat_id}/{message_id}/resend`).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use http::StatusCode;
use lambda_http::{Request, RequestExt};
use serde_json::json;

use adapters::http::ApiError;
use adapters::pinbot::MediaSource;
use domain::channel::Stakeholder;
use domain::chat::{Chat, ChatId, Delivery, DeliveryStatus, MessageRef, SenderType};
use domain::customer::SenderId;
use domain::inbound::InboundQueue;
use domain::protocol::{Pusher, Room};
use domain::sending::OutboundQueue;
use domain::sending::{
    Author, DeliveryStats, LogQuery, MAX_LOG_PAGE, MAX_PERIOD_DAYS, NotQueued, announce_delivery,
    days, decode_log_cursor, encode_log_cursor, enqueue_or_fail, queue_send,
};

use crate::{State, Store, answer, unavailable};

/// A stats query's period: its ends and its UTC days.
pub(crate) type Period = (DateTime<Utc>, DateTime<Utc>, Vec<NaiveDate>);

/// The period a stats query names, and its UTC days (at most 92).
pub(crate) fn period_days(req: &Request) -> Result<Period, ApiError> {
    let (from, to) = period(req)?;
    let days =
        days(from.date_naive(), to.date_naive(), MAX_PERIOD_DAYS).map_err(ApiError::bad_request)?;
    Ok((from, to, days))
}

/// The template the seeds' route sends when no name is given.
const DEFAULT_TEMPLATE: &str = "ask_issue_resolved";
const DEFAULT_LOG_PAGE: usize = 50;
const DEFAULT_PERIOD_DAYS: i64 = 7;

pub(crate) fn query(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A customer's number from a query: `+`, spaces and dashes ignored, 10 to
/// 15 digits, Indian 10-digit mobiles completed with 91.
fn mobile(raw: &str) -> Result<SenderId, ApiError> {
    let digits: String = raw
        .chars()
        .filter(|c| !matches!(c, '+' | ' ' | '-'))
        .collect();
    if !(10..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "`to` must be a mobile number of 10 to 15 digits",
        ));
    }
    SenderId::parse(&domain::customer::canonical_mobile(&digits))
        .map_err(|e| ApiError::bad_request(format!("`to`: {e}")))
}

/// `YYYY-MM-DD` (the whole UTC day) or an RFC 3339 instant.
fn instant(name: &str, raw: &str, end_of_day: bool) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let t = if end_of_day {
            d.and_hms_milli_opt(23, 59, 59, 999)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
        if let Some(t) = t {
            return Ok(t.and_utc());
        }
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request(format!("`{name}` must be YYYY-MM-DD or an RFC 3339 time"))
        })
}

/// `from` / `to` of a request, defaulting to the last seven days, at most
/// [`MAX_PERIOD_DAYS`] long.
fn period(req: &Request) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = match query(req, "to") {
        Some(v) => instant("to", &v, true)?,
        None => Utc::now(),
    };
    let from = match query(req, "from") {
        Some(v) => instant("from", &v, false)?,
        None => to - Duration::days(DEFAULT_PERIOD_DAYS),
    };
    days(from.date_naive(), to.date_naive(), MAX_PERIOD_DAYS).map_err(ApiError::bad_request)?;
    Ok((from, to))
}

fn not_queued(e: NotQueued) -> ApiError {
    match e {
        NotQueued::Invalid(e) => ApiError::bad_request(e.to_string()),
        NotQueued::WindowClosed { message, .. } => {
            ApiError::new(StatusCode::CONFLICT, "window_closed", message)
        }
        NotQueued::NoChat => ApiError::not_found("the chat no longer exists"),
        NotQueued::KeepsChanging => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the chat keeps changing; retry",
        ),
        e @ NotQueued::KeyReused(_) => ApiError::bad_request(e.to_string()),
        NotQueued::Store(e) => unavailable("sending")(e),
        NotQueued::Queue(_) => ApiError::unavailable(
            "the send queue is unavailable; the message is marked failed and can be re-sent",
        ),
    }
}

impl<S, Q, M, P, O> State<S, Q, M, P, O>
where
    S: Store,
    Q: InboundQueue,
    M: MediaSource,
    P: Pusher,
    O: OutboundQueue,
{
    /// `GET /api/chats/send_whatsapp_template?to=&name=&customer_type=`:
    /// an approved template (default `ask_issue_resolved`, Hindi) to a
    /// number, in the customer's current chat with that team (default
    /// Partner, the seeds' sending number), opened if there is none.
    pub(crate) async fn send_template(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        let caller = self.authorize(req).await?;
        let to =
            mobile(&query(req, "to").ok_or_else(|| ApiError::bad_request("`to` is required"))?)?;
        let name = query(req, "name").unwrap_or_else(|| DEFAULT_TEMPLATE.to_owned());
        let team = match query(req, "customer_type") {
            Some(v) => Stakeholder::parse(&v).map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => Stakeholder::Partner,
        };
        if !caller.sees(team) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("you do not serve {team} chats"),
            ));
        }
        let message = self
            .messages
            .template(&name, Vec::new())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let chat = self.current_or_new_chat(team, &to).await?;
        let author = Author {
            sender: caller.executive_id.to_string(),
            sender_type: SenderType::Agent,
        };
        let (_, stored) = queue_send(
            &self.store,
            &self.outbox,
            &self.messages,
            &chat,
            &message,
            &author,
            None,
        )
        .await
        .map_err(not_queued)?;
        let frame = domain::protocol::frame(
            "new_message",
            json!({"chat_id": chat.chat_id, "message": domain::protocol::views::MessageView::new(&stored)}),
            None,
        );
        domain::protocol::fanout::push_to_room(
            &self.store,
            &self.pusher,
            &Room::Chat(chat.chat_id.clone()),
            &frame,
        )
        .await;
        Ok(answer(
            StatusCode::OK,
            json!({"chat_id": chat.chat_id, "message_id": stored.message_id, "state": "queued", "template": name}),
        ))
    }

    async fn current_or_new_chat(
        &self,
        team: Stakeholder,
        to: &SenderId,
    ) -> Result<Chat, ApiError> {
        if let Some(chat) = self
            .store
            .current_chat(team, to)
            .await
            .map_err(unavailable("chats"))?
        {
            return Ok(chat);
        }
        let channel = self
            .channels
            .iter()
            .find(|c| c.stakeholder == team)
            .ok_or_else(|| ApiError::not_found(format!("no channel serves {team}")))?;
        let fresh = Chat::open(to.clone(), None, team, channel.id.clone(), Utc::now());
        self.store
            .create_chat(&fresh)
            .await
            .map_err(unavailable("chats"))
    }

    /// `GET /api/messages?customer=&state=&from=&to=&limit=&cursor=` (admin):
    /// outbound messages, newest first.
    pub(crate) async fn message_log(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.authorize_admin(req).await?;
        let (from, to) = period(req)?;
        let customer = query(req, "customer")
            .map(|c| {
                SenderId::parse(&domain::customer::canonical_mobile(
                    c.trim_start_matches('+'),
                ))
                .map_err(|e| ApiError::bad_request(format!("`customer`: {e}")))
            })
            .transpose()?;
        let state = query(req, "state")
            .map(|s| {
                DeliveryStatus::parse(&s).ok_or_else(|| {
                    ApiError::bad_request(
                        "`state` must be queued, accepted, sent, delivered, read or failed",
                    )
                })
            })
            .transpose()?;
        let limit = match query(req, "limit") {
            None => DEFAULT_LOG_PAGE,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LOG_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("`limit` must be 1 to {MAX_LOG_PAGE}"))
                })?,
        };
        let after = query(req, "cursor")
            .map(|c| {
                decode_log_cursor(&c)
                    .ok_or_else(|| ApiError::bad_request("`cursor` is not one this route gave"))
            })
            .transpose()?;
        let q = LogQuery {
            customer,
            state,
            from,
            to,
            limit,
            after,
        };
        let (entries, next) = self
            .store
            .outbound_log(&q)
            .await
            .map_err(unavailable("the message log"))?;
        let next_cursor = next.as_deref().map(encode_log_cursor);
        Ok(answer(
            StatusCode::OK,
            json!({"messages": entries, "has_more": next_cursor.is_some(), "next_cursor": next_cursor}),
        ))
    }

    /// `GET /api/messages/stats?from=&to=` (admin): counts per state and the
    /// average time to `sent`, per team and in total, by the UTC day each
    /// message was queued.
    pub(crate) async fn message_stats(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.authorize_admin(req).await?;
        let (from, to, days) = period_days(req)?;
        let by_team = self
            .store
            .outbound_stats(&days)
            .await
            .map_err(unavailable("message statistics"))?;
        let mut total = DeliveryStats::default();
        let mut teams = serde_json::Map::new();
        for (team, stats) in &by_team {
            total.add(stats);
            teams.insert(team.as_str().to_owned(), stats.view());
        }
        Ok(answer(
            StatusCode::OK,
            json!({
                "from": from.date_naive(),
                "to": to.date_naive(),
                "total": total.view(),
                "by_team": teams,
            }),
        ))
    }

    /// `GET /api/stats/service?from=&to=` (admin): first-response and
    /// resolution times and SLA breaches per team and per executive, by
    /// the UTC day they happened.
    pub(crate) async fn service_stats(
        &self,
        req: &Request,
    ) -> Result<http::Response<String>, ApiError> {
        self.authorize_admin(req).await?;
        let (from, to, days) = period_days(req)?;
        let rows = self
            .store
            .service_stats(&days)
            .await
            .map_err(unavailable("service statistics"))?;
        let mut body = domain::metrics::report(&rows);
        body["from"] = json!(from.date_naive());
        body["to"] = json!(to.date_naive());
        Ok(answer(StatusCode::OK, body))
    }

    /// `POST /api/messages/{chat_id}/{message_id}/resend` (admin): a
    /// `failed` message back to `queued` and onto the send queue; a
    /// `queued` / `unconfirmed` one overdue by more than
    /// `sending::STUCK_AFTER` back onto the send queue.
    pub(crate) async fn resend(
        &self,
        req: &Request,
        chat_id: &str,
        message_id: &str,
    ) -> Result<http::Response<String>, ApiError> {
        let caller = self.authorize_admin(req).await?;
        let chat_id =
            ChatId::parse(chat_id).map_err(|e| ApiError::bad_request(format!("chat id: {e}")))?;
        let reference = MessageRef {
            chat_id,
            message_id: message_id.chars().take(300).collect(),
        };
        let message = self
            .store
            .message(&reference.chat_id, &reference.message_id)
            .await
            .map_err(unavailable("messages"))?
            .ok_or_else(|| ApiError::not_found("no such message"))?;
        let state = message.delivery.as_ref().map(|d| d.status);
        if matches!(
            state,
            Some(DeliveryStatus::Queued | DeliveryStatus::Unconfirmed)
        ) {
            return self.resend_stuck(&reference, &caller).await;
        }
        if state != Some(DeliveryStatus::Failed) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_failed",
                format!(
                    "only a failed or stuck message can be re-sent; this one is {}",
                    state.map_or("not an outbound message", DeliveryStatus::as_str)
                ),
            ));
        }
        if !self
            .store
            .requeue_failed(&reference)
            .await
            .map_err(unavailable("messages"))?
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_failed",
                "the message changed; it is no longer failed",
            ));
        }
        enqueue_or_fail(&self.store, &self.outbox, &reference)
            .await
            .map_err(not_queued)?;
        tracing::info!(chat_id = %reference.chat_id, message_id = %reference.message_id,
            executive_id = %caller.executive_id, "failed message queued again");
        let queued = Delivery {
            status: DeliveryStatus::Queued,
            at: Some(Utc::now()),
            errors: Vec::new(),
        };
        announce_delivery(&self.store, &self.pusher, &reference, None, &queued).await;
        Ok(answer(
            StatusCode::OK,
            json!({"chat_id": reference.chat_id, "message_id": reference.message_id, "state": "queued"}),
        ))
    }

    /// A send still waiting: queued again only when it is overdue (a
    /// message on its way is left alone: sending it now could send it twice).
    async fn resend_stuck(
        &self,
        reference: &MessageRef,
        caller: &domain::auth::Caller,
    ) -> Result<http::Response<String>, ApiError> {
        let now = Utc::now();
        let due = self
            .store
            .send_due(reference)
            .await
            .map_err(unavailable("messages"))?;
        let stuck_since = now - domain::sending::STUCK_AFTER;
        match due {
            Some(due) if due < stuck_since => {}
            Some(due) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "on_its_way",
                    format!(
                        "the message is on its way (due {}); it can be re-sent if it is still unsent {} minutes after that",
                        due.to_rfc3339(),
                        domain::sending::STUCK_AFTER.num_minutes()
                    ),
                ));
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "not_failed",
                    "the message changed; it is no longer waiting to be sent",
                ));
            }
        }
        self.outbox.enqueue(reference).await.map_err(|e| {
            tracing::error!(error = ?e, "send queue unavailable");
            ApiError::unavailable("the send queue is unavailable; retry")
        })?;
        tracing::info!(chat_id = %reference.chat_id, message_id = %reference.message_id,
            executive_id = %caller.executive_id, "stuck message queued again");
        Ok(answer(
            StatusCode::OK,
            json!({"chat_id": reference.chat_id, "message_id": reference.message_id, "state": "queued"}),
        ))
    }
}
