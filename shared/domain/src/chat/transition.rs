//! What an event does to a chat: the chat's rules as one pure function,
//! [`transition`], from the header as read and an event to the header
//! after it and everything that moves with it (dashboard counters, the
//! waiting line, the SLA's index, the system tag, service metrics, the
//! owner's load, the status log).
//!
//! The store turns a [`Transition`] into one conditional write (the header
//! must still be as [`Expect`] says, or nothing is written and the caller
//! reads again). Nothing here knows how chats are stored; the rules are
//! tested below without any storage.

use chrono::{DateTime, Utc};

use crate::chat::{Chat, ChatStatus, Counts, Direction, Message, SenderType};
use crate::executive::ExecutiveId;
use crate::metrics;

/// Who changes a chat's status when no agent does.
pub const SYSTEM_ACTOR: &str = "system";

/// Something that changes a chat.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A message stored in the chat: the customer's, an agent's or the
    /// system's (its `sender_type` says which).
    Message(&'a Message),
    /// The customer's answer to the resolution rating, stored in the chat.
    /// A rating is not a new conversation: the chat keeps its status and
    /// nobody is made to wait for a reply.
    Rating { message: &'a Message, score: u8 },
    /// An agent resolves or reopens the chat; resolving asks the customer
    /// for a rating when `ask_rating` (the team's setting).
    Status {
        to: ChatStatus,
        by: &'a ExecutiveId,
        at: DateTime<Utc>,
        ask_rating: bool,
    },
    /// The customer's context changed (say, a partner's documents were
    /// approved): the conversation about the old context is over, so an
    /// active chat is resolved by the system.
    ContextChanged { at: DateTime<Utc> },
}

/// A sparse index entry the event sets or clears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    Keep,
    /// In the index from this time (its sort key).
    Enter(DateTime<Utc>),
    Leave,
}

/// The system tag `Awaiting Customer Response`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemTag {
    Keep,
    /// An agent answered: the ball is in the customer's court.
    Add,
    /// The customer wrote.
    Remove,
}

/// What the header must still be for the change to apply (optimistic
/// concurrency: otherwise the counters would move twice or not at all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    pub status: ChatStatus,
    pub awaiting_reply: bool,
    /// For messages: the customer-message count read markers count against.
    pub inbound_count: Option<u64>,
    /// For status changes: the owner as read (`Some(None)`: nobody).
    pub owner: Option<Option<ExecutiveId>>,
    /// The first response is recorded once.
    pub no_first_response: bool,
}

/// A line of the chat's status log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    pub from: ChatStatus,
    pub to: ChatStatus,
    pub by: String,
    pub at: DateTime<Utc>,
    /// Why, when the system did it (`context_change`).
    pub reason: Option<&'static str>,
}

/// Everything an event changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The header after the event (counts included).
    pub after: Chat,
    pub expect: Expect,
    /// What the dashboard's active / resolved / pending counters move by.
    pub counts: Counts,
    /// The team's line of unowned active chats (round robin's queue). An
    /// owned chat stays in its owner's list; `Leave` takes it out of both.
    pub line: Index,
    /// The waiting customers the SLA watches (from the episode's start).
    pub waiting: Index,
    pub system_tag: SystemTag,
    /// The customer's latest profile name, to store with their message.
    pub customer_name: Option<String>,
    /// Service metrics to add to, for the chat's team and `credited`.
    pub metrics: Vec<(&'static str, i64)>,
    pub credited: Option<String>,
    pub first_response_secs: Option<i64>,
    pub resolution_secs: Option<i64>,
    /// The owner the chat left (their open-chat count goes down).
    pub released: Option<ExecutiveId>,
    pub status_change: Option<StatusChange>,
    /// The conversation is over: the customer's next message opens a new
    /// chat (their current-chat pointer goes).
    pub ends_conversation: bool,
}

/// What `event` does to `chat` (the header as read). `None` when it does
/// nothing (a status change to the status the chat has; a context change
/// of a resolved chat).
pub fn transition(chat: &Chat, event: Event<'_>) -> Option<Transition> {
    match event {
        Event::Message(m) => Some(message(chat, m, None)),
        Event::Rating { message: m, score } => Some(message(chat, m, Some(score))),
        Event::Status {
            to,
            by,
            at,
            ask_rating,
        } => status(chat, to, by.as_str(), Some(by), at, ask_rating),
        Event::ContextChanged { at } => Some(context_changed(chat, at)),
    }
}

fn unchanged(chat: &Chat, expect: Expect) -> Transition {
    Transition {
        after: chat.clone(),
        expect,
        counts: Counts::default(),
        line: Index::Keep,
        waiting: Index::Keep,
        system_tag: SystemTag::Keep,
        customer_name: None,
        metrics: Vec::new(),
        credited: None,
        first_response_secs: None,
        resolution_secs: None,
        released: None,
        status_change: None,
        ends_conversation: false,
    }
}

fn message(chat: &Chat, m: &Message, rating: Option<u8>) -> Transition {
    let staffed = chat.customer_type.is_staffed();
    let inbound = m.direction == Direction::Inbound;
    let mut t = unchanged(
        chat,
        Expect {
            status: chat.status,
            awaiting_reply: chat.awaiting_reply,
            inbound_count: Some(chat.inbound_count),
            owner: None,
            no_first_response: false,
        },
    );
    if matches!(m.content, crate::chat::Content::Note { .. }) {
        // A note is for teammates: counted, but the chat's place in the
        // lists, its preview and who waits stay as they are.
        t.after.message_count += 1;
        return t;
    }
    let after = &mut t.after;
    after.last_message = Some(m.preview.clone());
    after.last_message_time = m.received_at;
    after.last_msg_by = Some(m.sender.clone());
    after.message_count += 1;
    if inbound {
        after.inbound_count += 1;
        after.last_incoming_message = Some(m.received_at);
        t.customer_name = chat.customer_name.clone();
    }
    if let Some(score) = rating {
        // Stored and shown, but the conversation stays where it is.
        rated(chat, score, &mut t);
    } else {
        match m.sender_type {
            SenderType::Customer => customer_wrote(chat, m.received_at, staffed, &mut t),
            SenderType::Agent => agent_answered(chat, m, &mut t),
            // The discount bot's answer ends the customer's wait on the
            // automated number (nobody else answers there).
            SenderType::System if !staffed => t.after.awaiting_reply = false,
            // Elsewhere system messages (alerts, notices) change neither side.
            SenderType::System => {}
        }
    }
    t.counts = moved(chat, &t.after);
    t
}

/// The customer rated the resolution: a second rating in the same window
/// replaces the first (in the chat and in the metrics). Credited to whoever
/// owned the chat when it was resolved, else whoever resolved it.
fn rated(chat: &Chat, score: u8, t: &mut Transition) {
    t.after.rating = Some(score);
    let index = |s: u8| usize::from(s.clamp(1, 5) - 1);
    let mut moved = vec![(metrics::RATING_COUNTS[index(score)], 1)];
    match chat.rating {
        Some(old) => {
            moved.push((metrics::RATING_SUM, i64::from(score) - i64::from(old)));
            moved.push((metrics::RATING_COUNTS[index(old)], -1));
        }
        None => {
            moved.push((metrics::RATINGS, 1));
            moved.push((metrics::RATING_SUM, i64::from(score)));
        }
    }
    t.metrics = moved;
    t.credited = chat
        .last_assignee
        .as_ref()
        .map(|e| e.as_str().to_owned())
        .or_else(|| chat.status_updated_by.clone());
}

/// The customer wrote: a resolved chat is open again (in its team's line
/// for an owner, no longer awaiting a rating), they now await a reply,
/// and the first message after the last answer starts a waiting episode
/// (the SLA clock).
fn customer_wrote(chat: &Chat, at: DateTime<Utc>, staffed: bool, t: &mut Transition) {
    if chat.status == ChatStatus::Resolved {
        t.after.status = ChatStatus::Active;
        t.after.opened_at = Some(at);
        t.after.rating_asked_at = None;
        if staffed {
            t.line = Index::Enter(at);
        }
    }
    t.after.awaiting_reply = true;
    t.system_tag = SystemTag::Remove;
    t.after.tags.retain(|tag| !is_system_tag(tag));
    if !chat.awaiting_reply && staffed {
        t.after.wait_started_at = Some(at);
        t.waiting = Index::Enter(at);
    }
}

/// An agent answered: nobody waits any more, the ball is in the
/// customer's court, and the answer is timed: the chat's first answer
/// from its opening (first response), any later one from the start of
/// the wait it ends (next response).
fn agent_answered(chat: &Chat, m: &Message, t: &mut Transition) {
    t.after.awaiting_reply = false;
    t.system_tag = SystemTag::Add;
    if !t.after.tags.iter().any(|tag| is_system_tag(tag)) {
        t.after
            .tags
            .push(crate::chat::tags::AWAITING_CUSTOMER_RESPONSE.to_owned());
        t.after.tags.sort();
    }
    if chat.awaiting_reply {
        t.after.wait_started_at = None;
        t.waiting = Index::Leave;
    }
    if chat.first_response_at.is_none() && chat.inbound_count > 0 {
        let secs = metrics::seconds(chat.created_at, m.received_at);
        t.after.first_response_at = Some(m.received_at);
        t.first_response_secs = Some(secs);
        t.expect.no_first_response = true;
        t.metrics = vec![
            (metrics::FIRST_RESPONSES, 1),
            (metrics::FIRST_RESPONSE_SECS, secs),
        ];
        t.credited = Some(m.sender.clone());
    } else if let (true, Some(since)) = (chat.awaiting_reply, chat.wait_started_at) {
        let secs = metrics::seconds(since, m.received_at);
        t.metrics = vec![
            (metrics::NEXT_RESPONSES, 1),
            (metrics::NEXT_RESPONSE_SECS, secs),
        ];
        t.credited = Some(m.sender.clone());
    }
}

fn is_system_tag(tag: &str) -> bool {
    tag.eq_ignore_ascii_case(crate::chat::tags::AWAITING_CUSTOMER_RESPONSE)
}

fn status(
    chat: &Chat,
    to: ChatStatus,
    by: &str,
    agent: Option<&ExecutiveId>,
    at: DateTime<Utc>,
    ask_rating: bool,
) -> Option<Transition> {
    if chat.status == to {
        return None;
    }
    let mut t = unchanged(
        chat,
        Expect {
            status: chat.status,
            awaiting_reply: chat.awaiting_reply,
            inbound_count: None,
            owner: Some(chat.assigned_to.clone()),
            no_first_response: false,
        },
    );
    let after = &mut t.after;
    after.status = to;
    after.status_updated_by = Some(by.to_owned());
    after.status_updated_at = Some(at);
    match to {
        // Resolved: out of the owner's hands (their capacity freed), out
        // of the waiting line and the SLA's watch; timed, and credited to
        // the owner (or whoever resolved an unowned chat).
        ChatStatus::Resolved => {
            after.awaiting_reply = false;
            after.assigned_to = None;
            after.assigned_at = None;
            after.wait_started_at = None;
            if chat.assigned_to.is_some() {
                after.last_assignee = chat.assigned_to.clone();
            }
            // A new resolution asks anew: its rating is the next answer.
            if ask_rating {
                after.rating_asked_at = Some(at);
                after.rating = None;
            }
            t.line = Index::Leave;
            t.waiting = Index::Leave;
            t.released = chat.assigned_to.clone();
            let secs = metrics::seconds(chat.opened_at.unwrap_or(chat.created_at), at);
            t.resolution_secs = Some(secs);
            t.metrics = vec![(metrics::RESOLUTIONS, 1), (metrics::RESOLUTION_SECS, secs)];
            t.credited = chat
                .assigned_to
                .as_ref()
                .or(agent)
                .map(|e| e.as_str().to_owned());
        }
        // Reopened by an agent: timed from now, and unowned chats of a
        // staffed team wait in its line again.
        ChatStatus::Active => {
            after.opened_at = Some(at);
            after.rating_asked_at = None;
            if chat.customer_type.is_staffed() && chat.assigned_to.is_none() {
                t.line = Index::Enter(at);
            }
        }
    }
    t.status_change = Some(StatusChange {
        from: chat.status,
        to,
        by: by.to_owned(),
        at,
        reason: None,
    });
    t.counts = moved(chat, &t.after);
    Some(t)
}

/// The customer's context changed: an active chat is resolved by the
/// system (no rating asked), and whatever its status the conversation is
/// over.
fn context_changed(chat: &Chat, at: DateTime<Utc>) -> Transition {
    let mut t =
        status(chat, ChatStatus::Resolved, SYSTEM_ACTOR, None, at, false).unwrap_or_else(|| {
            unchanged(
                chat,
                Expect {
                    status: chat.status,
                    awaiting_reply: chat.awaiting_reply,
                    inbound_count: None,
                    owner: None,
                    no_first_response: false,
                },
            )
        });
    if let Some(log) = &mut t.status_change {
        log.reason = Some(crate::chat::context::CONTEXT_CHANGE);
    }
    t.ends_conversation = true;
    t.after.ended_at.get_or_insert(at);
    t
}

fn moved(before: &Chat, after: &Chat) -> Counts {
    Counts::delta(
        Some((before.status, before.awaiting_reply)),
        (after.status, after.awaiting_reply),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{ChannelId, Stakeholder};
    use crate::chat::Content;
    use crate::chat::tags::AWAITING_CUSTOMER_RESPONSE;
    use crate::customer::SenderId;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_763_700_000 + secs, 0).unwrap()
    }

    fn chat(team: Stakeholder) -> Chat {
        Chat::open(
            SenderId::parse("919810000001").unwrap(),
            Some("Ravi".into()),
            team,
            ChannelId::parse("9731011030").unwrap(),
            at(0),
        )
    }

    fn msg(sender_type: SenderType, secs: i64) -> Message {
        let direction = match sender_type {
            SenderType::Customer => Direction::Inbound,
            _ => Direction::Outbound,
        };
        let sender = match sender_type {
            SenderType::Customer => "919810000001",
            SenderType::Agent => "asha",
            SenderType::System => "system",
        };
        Message {
            chat_id: ChatId::new(),
            message_id: format!("m{secs}"),
            wa_message_id: None,
            direction,
            sender: sender.into(),
            sender_type,
            content: Content::Text { body: "hi".into() },
            preview: "hi".into(),
            sent_at: None,
            received_at: at(secs),
            reply_to: None,
            reply_to_message_id: None,
            delivery: None,
            inbound_seq: 0,
            referral: None,
        }
    }
    use crate::chat::ChatId;

    /// The chat after an agent resolved it at `secs`.
    fn resolve(chat: &Chat, secs: i64) -> Chat {
        let by = ExecutiveId::parse("asha").unwrap();
        let event = Event::Status {
            to: ChatStatus::Resolved,
            by: &by,
            at: at(secs),
            ask_rating: true,
        };
        apply(chat, event).after
    }

    fn apply(chat: &Chat, event: Event<'_>) -> Transition {
        transition(chat, event).expect("the event changes the chat")
    }

    #[test]
    fn a_customer_message_makes_them_wait_and_starts_the_sla_clock_once() {
        let c = chat(Stakeholder::Partner);
        let t = apply(&c, Event::Message(&msg(SenderType::Customer, 10)));
        assert!(t.after.awaiting_reply);
        assert_eq!(t.after.inbound_count, 1);
        assert_eq!(t.after.message_count, 1);
        assert_eq!(t.after.last_incoming_message, Some(at(10)));
        assert_eq!(t.waiting, Index::Enter(at(10)));
        assert_eq!(t.after.wait_started_at, Some(at(10)));
        assert_eq!(t.system_tag, SystemTag::Remove);
        assert_eq!(t.counts.pending, 1);
        assert_eq!(t.expect.inbound_count, Some(0));
        // A second message in the same episode keeps its start.
        let t2 = apply(&t.after, Event::Message(&msg(SenderType::Customer, 20)));
        assert_eq!(t2.waiting, Index::Keep);
        assert_eq!(t2.after.wait_started_at, Some(at(10)));
        assert_eq!(t2.counts, Counts::default());
    }

    #[test]
    fn an_agent_answer_ends_the_wait_tags_the_chat_and_is_timed_once() {
        let c = chat(Stakeholder::Customer);
        let waiting = apply(&c, Event::Message(&msg(SenderType::Customer, 10))).after;
        let t = apply(&waiting, Event::Message(&msg(SenderType::Agent, 70)));
        assert!(!t.after.awaiting_reply);
        assert_eq!(t.waiting, Index::Leave);
        assert_eq!(t.after.wait_started_at, None);
        assert_eq!(t.system_tag, SystemTag::Add);
        assert_eq!(t.after.tags, vec![AWAITING_CUSTOMER_RESPONSE.to_owned()]);
        assert_eq!(t.first_response_secs, Some(70));
        assert_eq!(t.credited.as_deref(), Some("asha"));
        assert!(t.expect.no_first_response);
        assert_eq!(t.counts.pending, -1);
        assert_eq!(t.customer_name, None);
        // The second answer is no first response, and ends no wait.
        let t2 = apply(&t.after, Event::Message(&msg(SenderType::Agent, 80)));
        assert_eq!(t2.first_response_secs, None);
        assert!(t2.metrics.is_empty());
        assert_eq!(t2.waiting, Index::Keep);
        // The customer writes again at 100; the answer at 145 is a next
        // response of 45 s, credited to whoever answered.
        let waiting = apply(&t2.after, Event::Message(&msg(SenderType::Customer, 100))).after;
        let t3 = apply(&waiting, Event::Message(&msg(SenderType::Agent, 145)));
        assert_eq!(
            t3.metrics,
            vec![
                (metrics::NEXT_RESPONSES, 1),
                (metrics::NEXT_RESPONSE_SECS, 45)
            ]
        );
        assert_eq!(t3.credited.as_deref(), Some("asha"));
        assert_eq!(t3.first_response_secs, None);
    }

    #[test]
    fn an_answer_before_the_customer_wrote_is_no_first_response() {
        let t = apply(
            &chat(Stakeholder::Vendor),
            Event::Message(&msg(SenderType::Agent, 5)),
        );
        assert_eq!(t.first_response_secs, None);
        assert_eq!(t.after.first_response_at, None);
    }

    #[test]
    fn a_customer_writing_to_a_resolved_chat_reopens_it_into_the_line() {
        let resolved = resolve(&chat(Stakeholder::Partner), 50);
        let t = apply(&resolved, Event::Message(&msg(SenderType::Customer, 90)));
        assert_eq!(t.after.status, ChatStatus::Active);
        assert_eq!(t.after.opened_at, Some(at(90)));
        assert_eq!(t.line, Index::Enter(at(90)));
        assert_eq!(
            t.counts,
            Counts {
                active: 1,
                resolved: -1,
                pending: 1
            }
        );
        assert_eq!(t.customer_name.as_deref(), Some("Ravi"));
    }

    #[test]
    fn the_discount_team_is_neither_lined_up_nor_watched() {
        let c = chat(Stakeholder::Discount);
        let t = apply(&c, Event::Message(&msg(SenderType::Customer, 10)));
        assert_eq!(t.waiting, Index::Keep);
        assert_eq!(t.after.wait_started_at, None);
        assert!(t.after.awaiting_reply);
        let resolved = resolve(&t.after, 20);
        let reopened = apply(&resolved, Event::Message(&msg(SenderType::Customer, 30)));
        assert_eq!(reopened.line, Index::Keep);
        // The bot answered: nobody waits, no response is timed.
        let answered = apply(&t.after, Event::Message(&msg(SenderType::System, 11)));
        assert!(!answered.after.awaiting_reply);
        assert_eq!(answered.waiting, Index::Keep);
        assert_eq!(answered.first_response_secs, None);
        // On a staffed team a system notice changes neither side.
        let c = apply(
            &chat(Stakeholder::Partner),
            Event::Message(&msg(SenderType::Customer, 10)),
        );
        let notice = apply(&c.after, Event::Message(&msg(SenderType::System, 11)));
        assert!(notice.after.awaiting_reply);
    }

    #[test]
    fn resolving_frees_the_owner_clears_the_indexes_and_credits_the_owner() {
        let mut c = chat(Stakeholder::Partner);
        c = apply(&c, Event::Message(&msg(SenderType::Customer, 10))).after;
        let owner = ExecutiveId::parse("ravi").unwrap();
        c.assigned_to = Some(owner.clone());
        c.assigned_at = Some(at(11));
        let admin = ExecutiveId::parse("admin").unwrap();
        let t = apply(
            &c,
            Event::Status {
                to: ChatStatus::Resolved,
                by: &admin,
                at: at(310),
                ask_rating: true,
            },
        );
        assert_eq!(t.after.status, ChatStatus::Resolved);
        assert!(!t.after.awaiting_reply);
        assert_eq!(t.after.assigned_to, None);
        assert_eq!(t.released, Some(owner.clone()));
        assert_eq!((t.line, t.waiting), (Index::Leave, Index::Leave));
        assert_eq!(t.resolution_secs, Some(310));
        assert_eq!(t.credited.as_deref(), Some("ravi"));
        assert_eq!(t.expect.owner, Some(Some(owner)));
        assert_eq!(
            t.counts,
            Counts {
                active: -1,
                resolved: 1,
                pending: -1
            }
        );
        let log = t.status_change.expect("logged");
        assert_eq!(
            (log.from, log.to, log.by.as_str()),
            (ChatStatus::Active, ChatStatus::Resolved, "admin")
        );
    }

    #[test]
    fn reopening_lines_an_unowned_chat_up_and_times_from_now() {
        let c = chat(Stakeholder::Vendor);
        let by = ExecutiveId::parse("asha").unwrap();
        let resolved = resolve(&c, 5);
        let t = apply(
            &resolved,
            Event::Status {
                to: ChatStatus::Active,
                by: &by,
                at: at(9),
                ask_rating: true,
            },
        );
        assert_eq!(t.after.opened_at, Some(at(9)));
        assert_eq!(t.line, Index::Enter(at(9)));
        assert!(
            transition(
                &t.after,
                Event::Status {
                    to: ChatStatus::Active,
                    by: &by,
                    at: at(10),
                    ask_rating: true
                }
            )
            .is_none()
        );
    }

    #[test]
    fn a_rating_is_stored_without_reopening_or_making_anyone_wait() {
        let resolved = resolve(&chat(Stakeholder::Customer), 5);
        let m = msg(SenderType::Customer, 60);
        let t = apply(
            &resolved,
            Event::Rating {
                message: &m,
                score: 5,
            },
        );
        assert_eq!(t.after.status, ChatStatus::Resolved);
        assert!(!t.after.awaiting_reply);
        assert_eq!(
            (t.line, t.waiting, t.system_tag),
            (Index::Keep, Index::Keep, SystemTag::Keep)
        );
        assert_eq!(t.after.rating, Some(5));
        assert_eq!(t.after.rating_asked_at, Some(at(5)));
        assert_eq!(t.after.inbound_count, 1);
        assert_eq!(t.counts, Counts::default());
        assert_eq!(t.credited.as_deref(), Some("asha"));
        let mut moved = t.metrics.clone();
        moved.sort();
        assert_eq!(
            moved,
            vec![
                (metrics::RATING_COUNTS[4], 1),
                (metrics::RATING_SUM, 5),
                (metrics::RATINGS, 1)
            ]
        );
        // A second answer replaces the first: one rating, moved from 5 to 2.
        let m2 = msg(SenderType::Customer, 70);
        let again = apply(
            &t.after,
            Event::Rating {
                message: &m2,
                score: 2,
            },
        );
        assert_eq!(again.after.rating, Some(2));
        let mut moved = again.metrics.clone();
        moved.sort();
        assert_eq!(
            moved,
            vec![
                (metrics::RATING_COUNTS[1], 1),
                (metrics::RATING_COUNTS[4], -1),
                (metrics::RATING_SUM, -3)
            ]
        );
        // Any other message reopens the chat and ends the wait for a rating.
        let reopened = apply(&again.after, Event::Message(&msg(SenderType::Customer, 80)));
        assert_eq!(reopened.after.status, ChatStatus::Active);
        assert_eq!(reopened.after.rating_asked_at, None);
    }

    #[test]
    fn a_context_change_resolves_an_active_chat_as_the_system() {
        let c = apply(
            &chat(Stakeholder::Partner),
            Event::Message(&msg(SenderType::Customer, 1)),
        )
        .after;
        let t = apply(&c, Event::ContextChanged { at: at(100) });
        assert_eq!(t.after.status, ChatStatus::Resolved);
        assert_eq!(t.after.status_updated_by.as_deref(), Some(SYSTEM_ACTOR));
        assert_eq!(t.credited, None);
        assert!(t.ends_conversation);
        assert_eq!(t.after.ended_at, Some(at(100)), "the header says so");
        assert_eq!(t.after.rating_asked_at, None, "no rating asked");
        assert_eq!(
            t.status_change.and_then(|s| s.reason),
            Some(crate::chat::context::CONTEXT_CHANGE)
        );
        // A resolved chat changes no further, but its conversation ends too.
        let again = apply(&t.after, Event::ContextChanged { at: at(200) });
        assert!(again.ends_conversation);
        assert_eq!(again.after.ended_at, Some(at(100)), "the first end stands");
        assert_eq!(again.after, t.after);
        assert_eq!(again.status_change, None);
    }

    fn sender() -> impl Strategy<Value = SenderType> {
        prop_oneof![
            Just(SenderType::Customer),
            Just(SenderType::Agent),
            Just(SenderType::System)
        ]
    }

    proptest! {
        /// Over any sequence of events, the counters the transitions move
        /// add up to a recount of the chat, the SLA index holds exactly the
        /// waiting chats of staffed teams, and a resolved chat has no owner
        /// and nobody waiting.
        #[test]
        fn counters_and_indexes_follow_the_chat(
            team in prop_oneof![Just(Stakeholder::Partner), Just(Stakeholder::Discount)],
            events in proptest::collection::vec((0u8..5, sender()), 1..40),
        ) {
            let by = ExecutiveId::parse("asha").unwrap();
            let mut c = chat(team);
            let mut total = Counts::delta(None, (c.status, c.awaiting_reply));
            let mut waiting = false;
            for (i, (kind, who)) in events.into_iter().enumerate() {
                let now = at(10 * (i as i64 + 1));
                let m = msg(who, 10 * (i as i64 + 1));
                let event = match kind {
                    0 | 1 => Event::Message(&m),
                    2 => Event::Status { to: ChatStatus::Resolved, by: &by, at: now, ask_rating: true },
                    3 => Event::Status { to: ChatStatus::Active, by: &by, at: now, ask_rating: true },
                    _ => Event::Rating { message: &m, score: 4 },
                };
                let Some(t) = transition(&c, event) else { continue };
                prop_assert_eq!(&t.expect.status, &c.status);
                total.active += t.counts.active;
                total.resolved += t.counts.resolved;
                total.pending += t.counts.pending;
                match t.waiting {
                    Index::Enter(_) => { prop_assert!(!waiting); waiting = true; }
                    Index::Leave => waiting = false,
                    Index::Keep => {}
                }
                c = t.after;
                prop_assert_eq!(total, Counts::delta(None, (c.status, c.awaiting_reply)));
                prop_assert_eq!(c.wait_started_at.is_some(), waiting);
                if waiting {
                    prop_assert!(team.is_staffed() && c.awaiting_reply && c.status == ChatStatus::Active);
                }
                if c.status == ChatStatus::Resolved {
                    prop_assert!(c.assigned_to.is_none() && !c.awaiting_reply && !waiting);
                }
            }
        }
    }
}
