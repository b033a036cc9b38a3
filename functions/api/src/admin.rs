//! Admin routes: executives (`/api/executives…`) and the predefined tags
//! of each team (`/api/tags…`). Listing tags is open to every signed-in
//! executive (for their teams); everything else needs the admin role.

use http::{Method, StatusCode};
use lambda_http::Request;
use serde_json::{Value, json};

use adapters::http::{ApiError, json_response};
use adapters::pinbot::MediaSource;
use domain::auth::Caller;
use domain::channel::Stakeholder;
use domain::chat::tags::{MAX_TAGS_PER_TEAM, TagName, team_tags};
use domain::error::StoreError;
use domain::executive::{Executive, ExecutiveId, ExecutivePatch, NewExecutive, Role};
use domain::inbound::InboundQueue;
use domain::protocol::Pusher;
use domain::sending::OutboundQueue;

use crate::{State, Store, answer, unavailable};

type Answer = Result<http::Response<String>, ApiError>;

fn json_body(req: &Request) -> Result<Value, ApiError> {
    adapters::http::parse_json_body(req.body().as_ref())
}

fn hashing_failed(e: domain::executive::HashError) -> ApiError {
    tracing::error!(error = %e, "password hashing failed");
    ApiError::unavailable("could not store the password; retry")
}

fn email_taken(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "email_taken", m),
        e => unavailable("executives")(e),
    }
}

fn team(raw: &str) -> Result<Stakeholder, ApiError> {
    match Stakeholder::parse(raw) {
        Ok(t) if Stakeholder::SERVED.contains(&t) => Ok(t),
        Ok(t) => Err(ApiError::bad_request(format!(
            "{t} chats are automated and have no tags"
        ))),
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

fn method_not_allowed(method: &Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed here"),
    )
}

impl<S, Q, M, P, O> State<S, Q, M, P, O>
where
    S: Store,
    Q: InboundQueue,
    M: MediaSource,
    P: Pusher,
    O: OutboundQueue,
{
    /// Routes `/api/executives…` and `/api/tags…` (`path` after `api`).
    pub(crate) async fn admin(&self, req: &Request, path: &[&str]) -> Answer {
        let method = req.method();
        match path {
            ["tags"] if method == Method::GET => {
                let caller = self.authorize(req).await?;
                self.list_tags(caller.stakeholders).await
            }
            _ => {
                let caller = self.authorize_admin(req).await?;
                match (method, path) {
                    (&Method::GET, ["executives"]) => self.list_executives().await,
                    (&Method::POST, ["executives"]) => self.create_executive(req).await,
                    (&Method::GET, ["executives", id]) => {
                        let e = self.find_executive(id).await?;
                        Ok(answer(StatusCode::OK, e))
                    }
                    (&Method::PATCH, ["executives", id]) => {
                        let patch = ExecutivePatch::parse(&json_body(req)?)
                            .map_err(ApiError::invalid_fields)?;
                        self.update_executive(&caller, id, patch).await
                    }
                    (&Method::DELETE, ["executives", id]) => {
                        let patch = ExecutivePatch {
                            disabled: Some(true),
                            ..Default::default()
                        };
                        self.update_executive(&caller, id, patch).await
                    }
                    (&Method::POST, ["tags"]) => self.add_tag(req).await,
                    (&Method::DELETE, ["tags", t, name]) => self.remove_tag(t, name).await,
                    (_, ["executives"] | ["executives", _] | ["tags"] | ["tags", _, _]) => {
                        Err(method_not_allowed(method))
                    }
                    _ => Err(ApiError::not_found("no such route")),
                }
            }
        }
    }

    async fn find_executive(&self, raw_id: &str) -> Result<Executive, ApiError> {
        let id = ExecutiveId::parse(raw_id).map_err(ApiError::bad_request)?;
        self.store
            .executive(&id)
            .await
            .map_err(unavailable("executives"))?
            .ok_or_else(|| ApiError::not_found(format!("no executive {id}")))
    }

    /// Every executive, with whether they are online and how many chats
    /// they hold (admins see who else is working).
    async fn list_executives(&self) -> Answer {
        let all = self
            .store
            .executives()
            .await
            .map_err(unavailable("executives"))?;
        let ids: Vec<ExecutiveId> = all.iter().map(|e| e.executive_id.clone()).collect();
        let presence = self
            .store
            .presence(&ids)
            .await
            .map_err(unavailable("presence"))?;
        let listed: Vec<Value> = all
            .iter()
            .map(|e| {
                let p = presence.get(&e.executive_id);
                let mut v = json!(e);
                v["online"] = json!(p.is_some_and(|p| p.online));
                v["open_chats"] = json!(p.map_or(0, |p| p.open_chats));
                v
            })
            .collect();
        Ok(answer(StatusCode::OK, listed))
    }

    async fn create_executive(&self, req: &Request) -> Answer {
        let new = NewExecutive::parse(&json_body(req)?).map_err(ApiError::invalid_fields)?;
        let executive = new.into_executive().map_err(hashing_failed)?;
        self.store
            .put_executive(&executive)
            .await
            .map_err(email_taken)?;
        tracing::info!(executive_id = %executive.executive_id, "executive created");
        Ok(answer(StatusCode::CREATED, executive))
    }

    async fn update_executive(
        &self,
        caller: &Caller,
        raw_id: &str,
        patch: ExecutivePatch,
    ) -> Answer {
        let before = self.find_executive(raw_id).await?;
        if before.executive_id == caller.executive_id
            && (patch.disabled == Some(true) || patch.role == Some(Role::Agent))
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "own_account",
                "you cannot disable or demote your own account; ask another admin",
            ));
        }
        let after = patch
            .apply(before.clone())
            .map_err(hashing_failed)?
            .map_err(ApiError::invalid_fields)?;
        self.store
            .put_executive(&after)
            .await
            .map_err(email_taken)?;
        tracing::info!(executive_id = %after.executive_id, disabled = after.disabled, "executive updated");
        // Whoever lost access or whose tokens were revoked loses their
        // open dashboards too.
        let lost_access = after.disabled
            || after.role != before.role
            || after.stakeholders != before.stakeholders
            || after.token_generation != before.token_generation;
        if lost_access {
            self.close_connections(&after.executive_id).await;
            // Closing forgets the connections before their `$disconnect`
            // runs, so the hand-off happens here: offline now, their chats
            // to others or back to the line (they go online again by
            // choice once they reconnect).
            if let Err(e) = domain::routing::assignment::offline_unless_connected(
                &self.store,
                &self.pusher,
                &after,
            )
            .await
            {
                tracing::warn!(executive_id = %after.executive_id, error = ?e,
                    "chats not handed on now; the presence sweep does it");
            }
        }
        Ok(answer(StatusCode::OK, after))
    }

    /// Closes the executive's WebSocket connections; they reconnect (and
    /// are refused if disabled) with their current rights.
    async fn close_connections(&self, id: &ExecutiveId) {
        let connections = match self.store.connections_of(id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(executive_id = %id, error = ?e, "could not list connections to close");
                return;
            }
        };
        let closes = connections
            .iter()
            .map(|c| domain::dashboard::close_connection(&self.store, &self.pusher, c));
        futures_util::future::join_all(closes).await;
    }

    async fn list_tags(&self, teams: Vec<Stakeholder>) -> Answer {
        let mut data = serde_json::Map::new();
        for team in teams {
            let tags = team_tags(&self.store, &self.tags, team)
                .await
                .map_err(unavailable("tags"))?;
            data.insert(
                team.as_str().to_owned(),
                json!(tags.iter().map(TagName::as_str).collect::<Vec<_>>()),
            );
        }
        Ok(answer(StatusCode::OK, data))
    }

    async fn add_tag(&self, req: &Request) -> Answer {
        let body = json_body(req)?;
        let field = |k: &str| body.get(k).and_then(Value::as_str);
        let team = team(
            field("customer_type")
                .ok_or_else(|| ApiError::bad_request("`customer_type` is required"))?,
        )?;
        let tag = TagName::parse(
            field("name").ok_or_else(|| ApiError::bad_request("`name` is required"))?,
        )
        .map_err(|e| ApiError::bad_request(format!("`name`: {e}")))?;
        if tag.is_system() {
            return Err(ApiError::bad_request(format!("{tag} is a system tag")));
        }
        let existing = team_tags(&self.store, &self.tags, team)
            .await
            .map_err(unavailable("tags"))?;
        if existing.len() >= MAX_TAGS_PER_TEAM {
            return Err(ApiError::bad_request(format!(
                "{team} has {MAX_TAGS_PER_TEAM} tags already"
            )));
        }
        let created = self
            .store
            .add_team_tag(team, &tag)
            .await
            .map_err(unavailable("tags"))?;
        if !created {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "tag_exists",
                format!("{team} has the tag {tag} already"),
            ));
        }
        tracing::info!(team = %team, tag = %tag, "tag added");
        Ok(answer(
            StatusCode::CREATED,
            json!({"customer_type": team, "name": tag.as_str()}),
        ))
    }

    async fn remove_tag(&self, raw_team: &str, raw_name: &str) -> Answer {
        let team = team(raw_team)?;
        let decoded = percent_decode(raw_name)
            .ok_or_else(|| ApiError::bad_request("tag name is not valid UTF-8"))?;
        let tag = TagName::parse(&decoded).map_err(ApiError::bad_request)?;
        // Seed first, so deleting a starting tag sticks.
        team_tags(&self.store, &self.tags, team)
            .await
            .map_err(unavailable("tags"))?;
        let removed = self
            .store
            .remove_team_tag(team, &tag)
            .await
            .map_err(unavailable("tags"))?;
        if !removed {
            return Err(ApiError::not_found(format!("{team} has no tag {tag}")));
        }
        tracing::info!(team = %team, tag = %tag, "tag removed");
        Ok(json_response(
            StatusCode::OK,
            &json!({"status": 1, "deleted": true}),
        ))
    }
}

/// Decodes `%XX` escapes of a path segment (tag names have spaces).
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn path_segments_decode() {
        assert_eq!(
            percent_decode("Payment%20Issue").as_deref(),
            Some("Payment Issue")
        );
        assert_eq!(percent_decode("Refund").as_deref(), Some("Refund"));
        assert_eq!(percent_decode("%ZZ"), None);
        assert_eq!(percent_decode("%E2%82%AC").as_deref(), Some("€"));
    }
}
