//! Chat lists (`fetch_all_chats`): the filters, the opaque cursor, and the
//! merge of each team's list into one page, latest activity first.
//!
//! Every team's list is an index partition sorted by [`ListPosition`]; a
//! page is read by walking those partitions in step (a k-way merge) from
//! the start or from a cursor's position, applying the filters as chats go
//! by. Filters that the index cannot answer cost reads, so one request
//! examines at most [`EXAMINE_BUDGET`] chats: a page can come back short
//! with `has_more` and a cursor that continues exactly where it stopped.
//!
//! Active lists put first the chats of customers riding soon (see
//! [`crate::rides`]), soonest ride first, then the rest by activity
//! without them; the cursor says which of the two a page continues.

use std::collections::{HashMap, HashSet, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::Stakeholder;
use crate::chat::ChatStore;
use crate::chat::tags::TagName;
use crate::chat::{Chat, ChatId, ChatStatus, ListPosition};
use crate::customer::CustomerProfile;
use crate::customer::CustomerStore;
use crate::customer::SenderId;
use crate::error::StoreError;
use crate::executive::ExecutiveId;

/// Most chats one request looks at while filtering.
pub const EXAMINE_BUDGET: usize = 2000;
/// Chats read from one team's list per query when filters are set.
const FILTERED_BATCH: usize = 100;
/// Profiles fetched per batch for the special filters.
const PROFILE_BATCH: usize = 100;
/// Longest `search` accepted.
pub const MAX_SEARCH_CHARS: usize = 64;

/// The special filters of the seeds, read from the customer's profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileFilter {
    /// `documents_status = Approved` and `dco_status = Active`.
    ActiveApproved,
    /// `documents_status = Pending`.
    Pending,
    /// `in_journey_status = true`.
    InJourney,
    /// `dco_status = Suspend`.
    Suspend,
}

impl ProfileFilter {
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "active_approved" => Ok(Self::ActiveApproved),
            "pending" => Ok(Self::Pending),
            "injourney" | "in_journey" => Ok(Self::InJourney),
            "suspend" => Ok(Self::Suspend),
            other => Err(format!(
                "unknown filter `{}` (expected Active_Approved, Pending, InJourney or Suspend)",
                other.chars().take(32).collect::<String>()
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActiveApproved => "Active_Approved",
            Self::Pending => "Pending",
            Self::InJourney => "InJourney",
            Self::Suspend => "Suspend",
        }
    }

    /// Whether a customer with this profile (or none) passes.
    pub fn matches(self, profile: Option<&CustomerProfile>) -> bool {
        let Some(p) = profile else { return false };
        let is = |v: &Option<String>, want: &str| {
            v.as_deref().is_some_and(|v| v.eq_ignore_ascii_case(want))
        };
        match self {
            Self::ActiveApproved => {
                is(&p.documents_status, "approved") && is(&p.dco_status, "active")
            }
            Self::Pending => is(&p.documents_status, "pending"),
            Self::InJourney => p.in_journey_status == Some(true),
            Self::Suspend => is(&p.dco_status, "suspend"),
        }
    }
}

/// `assigned_to`: an executive, the caller (`me`), or nobody (`none`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssigneeFilter {
    Me,
    Nobody,
    Executive(ExecutiveId),
}

impl AssigneeFilter {
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            v if v.eq_ignore_ascii_case("me") => Ok(Self::Me),
            v if v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("unassigned") => {
                Ok(Self::Nobody)
            }
            v => ExecutiveId::parse(v).map(Self::Executive),
        }
    }

    fn as_string(&self) -> String {
        match self {
            Self::Me => "me".into(),
            Self::Nobody => "none".into(),
            Self::Executive(id) => id.to_string(),
        }
    }

    fn matches(&self, assignee: Option<&ExecutiveId>, me: &ExecutiveId) -> bool {
        match self {
            Self::Me => assignee == Some(me),
            Self::Nobody => assignee.is_none(),
            Self::Executive(id) => assignee == Some(id),
        }
    }
}

/// The optional filters of `fetch_all_chats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatFilters {
    /// Part of the customer's number (digits) or name (any case), lower-case.
    pub search: Option<String>,
    pub profile: Option<ProfileFilter>,
    pub assigned_to: Option<AssigneeFilter>,
    pub tag: Option<TagName>,
}

impl ChatFilters {
    pub fn parse_search(raw: &str) -> Result<String, String> {
        let q = raw.trim().to_lowercase();
        if q.chars().count() > MAX_SEARCH_CHARS {
            return Err(format!(
                "search must be at most {MAX_SEARCH_CHARS} characters"
            ));
        }
        Ok(q)
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The filters a chat header alone can answer.
    pub fn matches_chat(&self, chat: &Chat, me: &ExecutiveId) -> bool {
        if let Some(q) = &self.search {
            let digits: String = q
                .chars()
                .filter(|c| !matches!(c, ' ' | '+' | '-'))
                .collect();
            let by_number = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && chat.customer.as_str().contains(&digits);
            let by_name = chat
                .customer_name
                .as_deref()
                .is_some_and(|n| n.to_lowercase().contains(q.as_str()));
            if !by_number && !by_name {
                return false;
            }
        }
        if let Some(a) = &self.assigned_to
            && !a.matches(chat.assigned_to.as_ref(), me)
        {
            return false;
        }
        if let Some(tag) = &self.tag
            && !chat.has_tag(tag.as_str())
        {
            return false;
        }
        true
    }
}

/// What a list shows: everything but where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListSpec {
    pub status: ChatStatus,
    pub customer_type: Option<Stakeholder>,
    pub filters: ChatFilters,
    pub page_size: u32,
}

/// Where a list continues: among the chats of customers riding soon (by
/// ride time, then chat id), or among the rest (by activity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListCursor {
    Soon {
        ride_at: DateTime<Utc>,
        chat_id: ChatId,
    },
    Rest(ListPosition),
}

/// Where a page starts: an offset page (the seeds' paging) or right after
/// a cursor's position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListStart {
    Page(u32),
    After(ListCursor),
}

/// A chat of a customer riding soon, with the ride's start time.
pub type SoonChat = (DateTime<Utc>, Chat);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatListQuery {
    pub spec: ListSpec,
    pub start: ListStart,
}

/// The cursor's contents: the query it continues and the position of the
/// last chat the previous page covered.
#[derive(Serialize, Deserialize)]
struct CursorBody {
    v: u8,
    st: ChatStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ct: Option<Stakeholder>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    g: Option<String>,
    n: u32,
    at: DateTime<Utc>,
    id: ChatId,
    /// `at` is a ride's start: the page continues among the chats of
    /// customers riding soon.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    s: bool,
}

const CURSOR_VERSION: u8 = 1;

/// An opaque cursor continuing `spec` after `after`.
pub fn encode_cursor(spec: &ListSpec, after: &ListCursor) -> String {
    let (at, id, soon) = match after {
        ListCursor::Soon { ride_at, chat_id } => (*ride_at, chat_id.clone(), true),
        ListCursor::Rest(p) => (p.at, p.chat_id.clone(), false),
    };
    let body = CursorBody {
        v: CURSOR_VERSION,
        st: spec.status,
        ct: spec.customer_type,
        q: spec.filters.search.clone(),
        f: spec.filters.profile.map(|p| p.as_str().to_owned()),
        a: spec
            .filters
            .assigned_to
            .as_ref()
            .map(AssigneeFilter::as_string),
        g: spec.filters.tag.as_ref().map(|t| t.as_str().to_owned()),
        n: spec.page_size,
        at,
        id,
        s: soon,
    };
    // Plain data always serialises; an empty cursor would only be refused.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
}

/// The query and position a cursor carries.
pub fn decode_cursor(cursor: &str) -> Result<(ListSpec, ListCursor), String> {
    let refused = || "`cursor` is not one this server issued".to_owned();
    if cursor.len() > 2048 {
        return Err(refused());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| refused())?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| refused())?;
    // Every field is checked as if the client had typed it: a cursor is
    // client input, and buys no larger page than a request could ask for.
    if body.v != CURSOR_VERSION || body.n == 0 || body.n > crate::protocol::MAX_PAGE_SIZE {
        return Err(refused());
    }
    let filters = ChatFilters {
        search: body.q.map(|q| ChatFilters::parse_search(&q)).transpose()?,
        profile: body.f.as_deref().map(ProfileFilter::parse).transpose()?,
        assigned_to: body.a.as_deref().map(AssigneeFilter::parse).transpose()?,
        tag: body.g.as_deref().map(TagName::parse).transpose()?,
    };
    Ok((
        ListSpec {
            status: body.st,
            customer_type: body.ct,
            filters,
            page_size: body.n,
        },
        if body.s {
            ListCursor::Soon {
                ride_at: body.at,
                chat_id: body.id,
            }
        } else {
            ListCursor::Rest(ListPosition {
                at: body.at,
                chat_id: body.id,
            })
        },
    ))
}

/// One page of a chat list.
#[derive(Clone, Debug, PartialEq)]
pub struct ListPage {
    pub chats: Vec<Chat>,
    /// Where the list continues after each chat (a page cut short resumes
    /// from its last chat).
    pub cursors: Vec<ListCursor>,
    /// More chats may follow `next`.
    pub has_more: bool,
    /// Where the next page starts (present when `has_more`).
    pub next: Option<ListCursor>,
}

/// One page of the chats not riding soon.
struct RestPage {
    chats: Vec<Chat>,
    has_more: bool,
    next: Option<ListPosition>,
}

/// One team's list, read lazily in batches.
struct Lane {
    team: Stakeholder,
    buffered: VecDeque<Chat>,
    before: Option<ListPosition>,
    more: bool,
}

/// Reads one page of `q` over `teams`' lists for the executive `me`:
/// first `soon` (the chats of customers riding soon, as
/// [`crate::rides::riding_soon`] found them; empty when the list does not sort by
/// rides), then the rest by activity.
pub async fn list_page<S>(
    store: &S,
    teams: &[Stakeholder],
    q: &ChatListQuery,
    me: &ExecutiveId,
    soon: Vec<SoonChat>,
) -> Result<ListPage, StoreError>
where
    S: ChatStore + CustomerStore,
{
    let page_size = q.spec.page_size as usize;
    let exclude: HashSet<ChatId> = soon.iter().map(|(_, c)| c.chat_id.clone()).collect();
    let soon_cursor = |(ride_at, chat): &SoonChat| ListCursor::Soon {
        ride_at: *ride_at,
        chat_id: chat.chat_id.clone(),
    };
    // The riding-soon chats this page starts with, and where the rest
    // starts.
    let (first, skip, after): (Vec<SoonChat>, usize, Option<ListPosition>) = match &q.start {
        ListStart::Page(p) => {
            let skip = (*p as usize).saturating_sub(1) * page_size;
            match soon.get(skip..) {
                Some(left) if !left.is_empty() => (left.to_vec(), 0, None),
                _ => (Vec::new(), skip - soon.len(), None),
            }
        }
        ListStart::After(ListCursor::Soon { ride_at, chat_id }) => (
            soon.into_iter()
                .filter(|(at, c)| (*at, &c.chat_id) > (*ride_at, chat_id))
                .collect(),
            0,
            None,
        ),
        ListStart::After(ListCursor::Rest(pos)) => (Vec::new(), 0, Some(pos.clone())),
    };
    let mut chats = Vec::with_capacity(page_size);
    let mut cursors = Vec::with_capacity(page_size);
    for entry in first.iter().take(page_size) {
        cursors.push(soon_cursor(entry));
        chats.push(entry.1.clone());
    }
    if first.len() > page_size {
        return Ok(ListPage {
            next: cursors.last().cloned(),
            has_more: true,
            chats,
            cursors,
        });
    }
    let wanted = page_size - chats.len();
    let rest = rest_page(store, teams, &q.spec, wanted, skip, after, &exclude, me).await?;
    for chat in rest.chats {
        cursors.push(ListCursor::Rest(chat.position()));
        chats.push(chat);
    }
    // A page filled by the riding-soon chats continues with the rest.
    let next = rest
        .next
        .map(ListCursor::Rest)
        .or_else(|| rest.has_more.then(|| cursors.last().cloned()).flatten());
    Ok(ListPage {
        has_more: rest.has_more && next.is_some(),
        next,
        chats,
        cursors,
    })
}

/// Reads `page_size` chats of `spec` over `teams`' lists for the
/// executive `me`, after skipping `skip` (or from just after `after`),
/// leaving out the chats in `exclude`.
#[allow(clippy::too_many_arguments)]
async fn rest_page<S>(
    store: &S,
    teams: &[Stakeholder],
    spec: &ListSpec,
    page_size: usize,
    skip: usize,
    after: Option<ListPosition>,
    exclude: &HashSet<ChatId>,
    me: &ExecutiveId,
) -> Result<RestPage, StoreError>
where
    S: ChatStore + CustomerStore,
{
    let q = spec;
    // One chat past the page tells whether another page exists.
    let need = skip + page_size + 1;
    let filtered = !q.filters.is_empty();
    let mut lanes: Vec<Lane> = teams
        .iter()
        .map(|team| Lane {
            team: *team,
            buffered: VecDeque::new(),
            before: after.clone(),
            more: true,
        })
        .collect();
    let mut matched: Vec<Chat> = Vec::new();
    let mut awaiting_profile: Vec<Chat> = Vec::new();
    let mut examined = 0usize;
    let mut last_examined: Option<ListPosition> = None;
    let mut exhausted = false;
    while matched.len() < need {
        if examined >= EXAMINE_BUDGET {
            break;
        }
        let batch = if filtered {
            FILTERED_BATCH
        } else {
            (need - matched.len()).clamp(1, FILTERED_BATCH)
        };
        let Some(chat) = next_chat(store, q.status, &mut lanes, batch).await? else {
            exhausted = true;
            break;
        };
        examined += 1;
        last_examined = Some(chat.position());
        if exclude.contains(&chat.chat_id) || !q.filters.matches_chat(&chat, me) {
            continue;
        }
        if q.filters.profile.is_some() {
            awaiting_profile.push(chat);
            // Check a batch once it is full or could complete the page.
            if awaiting_profile.len() >= PROFILE_BATCH
                || matched.len() + awaiting_profile.len() >= need
            {
                keep_profile_matches(store, q, &mut awaiting_profile, &mut matched).await?;
            }
        } else {
            matched.push(chat);
        }
    }
    keep_profile_matches(store, q, &mut awaiting_profile, &mut matched).await?;
    if matched.len() >= need {
        let chats: Vec<Chat> = matched.into_iter().skip(skip).take(page_size).collect();
        let next = chats.last().map(Chat::position);
        return Ok(RestPage {
            has_more: true,
            next,
            chats,
        });
    }
    let chats: Vec<Chat> = matched.into_iter().skip(skip).collect();
    if exhausted {
        Ok(RestPage {
            chats,
            has_more: false,
            next: None,
        })
    } else {
        // The budget ran out: everything up to the last chat examined has
        // been considered, so the next page starts there.
        Ok(RestPage {
            chats,
            has_more: true,
            next: last_examined,
        })
    }
}

/// Moves the chats whose customer profile passes the filter to `matched`.
pub(crate) async fn keep_profile_matches<S: CustomerStore>(
    store: &S,
    spec: &ListSpec,
    pending: &mut Vec<Chat>,
    matched: &mut Vec<Chat>,
) -> Result<(), StoreError> {
    let Some(filter) = spec.filters.profile else {
        matched.append(pending);
        return Ok(());
    };
    if pending.is_empty() {
        return Ok(());
    }
    let mut customers: Vec<SenderId> = pending.iter().map(|c| c.customer.clone()).collect();
    customers.sort();
    customers.dedup();
    let profiles: HashMap<SenderId, CustomerProfile> = store.profiles(&customers).await?;
    matched.extend(
        pending
            .drain(..)
            .filter(|c| filter.matches(profiles.get(&c.customer))),
    );
    Ok(())
}

/// The next chat over all lanes, latest position first.
async fn next_chat<S: ChatStore>(
    store: &S,
    status: ChatStatus,
    lanes: &mut [Lane],
    batch: usize,
) -> Result<Option<Chat>, StoreError> {
    for lane in lanes.iter_mut() {
        if lane.buffered.is_empty() && lane.more {
            let (chats, more) = store
                .list_chats(status, lane.team, lane.before.as_ref(), batch)
                .await?;
            lane.more = more && !chats.is_empty();
            if let Some(last) = chats.last() {
                lane.before = Some(last.position());
            }
            lane.buffered.extend(chats);
        }
    }
    let best = lanes
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.buffered.front().map(|c| (i, c.position())))
        .max_by(|a, b| a.1.cmp(&b.1))
        .map(|(i, _)| i);
    Ok(best.and_then(|i| lanes[i].buffered.pop_front()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ListSpec {
        ListSpec {
            status: ChatStatus::Resolved,
            customer_type: Some(Stakeholder::Vendor),
            filters: ChatFilters {
                search: Some("ravi".into()),
                profile: Some(ProfileFilter::InJourney),
                assigned_to: Some(AssigneeFilter::Me),
                tag: Some(TagName::parse("Refund").unwrap()),
            },
            page_size: 25,
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let pos = ListPosition {
            at: Utc::now(),
            chat_id: ChatId::new(),
        };
        let c = encode_cursor(&spec(), &ListCursor::Rest(pos.clone()));
        let (s, p) = decode_cursor(&c).unwrap();
        assert_eq!(s, spec());
        assert_eq!(p, ListCursor::Rest(pos.clone()));
        // A cursor among the customers riding soon says so.
        let soon = ListCursor::Soon {
            ride_at: pos.at,
            chat_id: pos.chat_id.clone(),
        };
        let (_, p) = decode_cursor(&encode_cursor(&spec(), &soon)).unwrap();
        assert_eq!(p, soon);
        let huge = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(&c).unwrap())
                .unwrap()
                .replace("\"n\":25", "\"n\":100000"),
        );
        assert!(decode_cursor(&huge).is_err(), "page size over the cap");
        for bad in ["", "abc", "!!!", &c[1..], &"A".repeat(3000)] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn profile_filters_follow_the_seeds() {
        let p = |d: &str, c: &str, j: bool| CustomerProfile {
            documents_status: Some(d.into()),
            dco_status: Some(c.into()),
            in_journey_status: Some(j),
            ..CustomerProfile::default()
        };
        assert!(ProfileFilter::ActiveApproved.matches(Some(&p("Approved", "Active", false))));
        assert!(!ProfileFilter::ActiveApproved.matches(Some(&p("Pending", "Active", false))));
        assert!(ProfileFilter::Pending.matches(Some(&p("pending", "Inactive", false))));
        assert!(ProfileFilter::InJourney.matches(Some(&p("x", "y", true))));
        assert!(ProfileFilter::Suspend.matches(Some(&p("Approved", "Suspend", false))));
        assert!(!ProfileFilter::Suspend.matches(None));
        assert!(ProfileFilter::parse("Active_Approved").is_ok());
        assert!(ProfileFilter::parse("Asleep").is_err());
    }

    #[test]
    fn search_matches_number_digits_or_name() {
        let mut chat = Chat::open(
            SenderId::parse("919812345678").unwrap(),
            Some("Ravi Kumar".into()),
            Stakeholder::Partner,
            crate::channel::ChannelId::parse("9099039188").unwrap(),
            Utc::now(),
        );
        let me = ExecutiveId::parse("me1").unwrap();
        let f = |q: &str| ChatFilters {
            search: Some(ChatFilters::parse_search(q).unwrap()),
            ..Default::default()
        };
        assert!(f("98123").matches_chat(&chat, &me));
        assert!(f("+91 98123").matches_chat(&chat, &me));
        assert!(f("KUMAR").matches_chat(&chat, &me));
        assert!(!f("priya").matches_chat(&chat, &me));
        chat.assigned_to = Some(me.clone());
        let a = |v: &str| ChatFilters {
            assigned_to: Some(AssigneeFilter::parse(v).unwrap()),
            ..Default::default()
        };
        assert!(a("me").matches_chat(&chat, &me));
        assert!(a("me1").matches_chat(&chat, &me));
        assert!(!a("none").matches_chat(&chat, &me));
    }
}
