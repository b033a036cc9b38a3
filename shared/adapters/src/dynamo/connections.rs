//! Dashboard connections and the rooms they follow.

use super::*;

fn room_item(connection: &Connection, room: &Room, expires_at: u64) -> Item {
    let mut item = key(
        conn_pk(&connection.connection_id),
        format!("ROOM#{}", room.key()),
    );
    item.insert("gsi1pk".into(), s(format!("ROOM#{}", room.key())));
    item.insert("gsi1sk".into(), s(conn_pk(&connection.connection_id)));
    item.insert("connection_id".into(), s(&connection.connection_id.0));
    item.insert("executive_id".into(), s(connection.executive_id.as_str()));
    item.insert("expires_at".into(), n(expires_at));
    item
}

impl ConnectionStore for DynamoStore {
    async fn add_connection(&self, c: &Connection, rooms: &[Room]) -> Result<(), StoreError> {
        let expires_at = epoch_after(Duration::minutes(CONNECTION_TTL_MINUTES));
        let mut meta = key(conn_pk(&c.connection_id), "META");
        meta.insert("gsi1pk".into(), s(format!("USER#{}", c.executive_id)));
        meta.insert("gsi1sk".into(), s(conn_pk(&c.connection_id)));
        meta.insert("connection_id".into(), s(&c.connection_id.0));
        meta.insert("executive_id".into(), s(c.executive_id.as_str()));
        let role = match c.role {
            Role::Agent => "agent",
            Role::Admin => "admin",
        };
        meta.insert("role".into(), s(role));
        meta.insert(
            "stakeholders".into(),
            AttributeValue::L(c.stakeholders.iter().map(|x| s(x.as_str())).collect()),
        );
        meta.insert("connected_at".into(), t(c.connected_at));
        if let Some(g) = c.token_generation {
            meta.insert("token_generation".into(), n(g));
        }
        meta.insert("expires_at".into(), n(expires_at));
        let mut writes = vec![put_request(meta)?];
        for room in rooms {
            writes.push(put_request(room_item(c, room, expires_at))?);
        }
        self.batch_write(&self.tables.connections, writes).await
    }

    async fn connection(&self, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        let Some(item) = self
            .get(&self.tables.connections, key(conn_pk(id), "META"))
            .await?
        else {
            return Ok(None);
        };
        // TTL deletion runs up to days late: an expired record is no
        // connection, whether or not it has been deleted yet.
        if item
            .u64("expires_at")
            .is_ok_and(|e| e < epoch_after(Duration::zero()))
        {
            return Ok(None);
        }
        let bad = |what: &str| StoreError::Corrupt(format!("connection item: {what}"));
        Ok(Some(Connection {
            connection_id: id.clone(),
            executive_id: ExecutiveId::parse(item.str("executive_id")?)
                .map_err(|_| bad("executive_id"))?,
            role: match item.str("role")? {
                "admin" => Role::Admin,
                _ => Role::Agent,
            },
            stakeholders: item
                .str_list("stakeholders")
                .into_iter()
                .filter_map(|x| Stakeholder::parse(x).ok())
                .collect(),
            connected_at: item.time("connected_at")?,
            token_generation: match item.get("token_generation") {
                Some(_) => Some(item.u64("token_generation")?),
                None => None,
            },
        }))
    }

    async fn remove_connection(&self, id: &ConnectionId) -> Result<(), StoreError> {
        let table = &self.tables.connections;
        // A connection has one item per room it joined: bounded and small.
        let items = self
            .query_desc(table, None, "pk", conn_pk(id), None, 1000)
            .await?;
        let mut deletes = Vec::with_capacity(items.len());
        for item in items {
            let k = key(item.str("pk")?, item.str("sk")?);
            deletes.push(
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(k))
                            .build()
                            .map_err(build_err)?,
                    )
                    .build(),
            );
        }
        self.batch_write(table, deletes).await
    }

    async fn join(&self, c: &Connection, room: &Room) -> Result<bool, StoreError> {
        let table = &self.tables.connections;
        let expires_at = epoch_after(Duration::minutes(CONNECTION_TTL_MINUTES));
        // The room item (new only) and the connection's count of joined
        // rooms (under the cap), together.
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(room_item(c, room, expires_at)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err)?;
        let count = Update::builder()
            .table_name(table)
            .set_key(Some(key(conn_pk(&c.connection_id), "META")))
            .update_expression("ADD joined :one")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(joined) OR joined < :max)",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(domain::protocol::MAX_JOINED_CHATS))
            .build()
            .map_err(build_err)?;
        let writes = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.transact_writes(writes).await {
            Ok(()) => Ok(true),
            // In the room already: nothing to count.
            Err(e) if first_condition_failed(&e) => Ok(true),
            Err(e) if any_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn leave(&self, id: &ConnectionId, room: &Room) -> Result<(), StoreError> {
        let table = &self.tables.connections;
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(table)
            .set_key(Some(key(conn_pk(id), format!("ROOM#{}", room.key()))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_err)?;
        let count = Update::builder()
            .table_name(table)
            .set_key(Some(key(conn_pk(id), "META")))
            .update_expression("ADD joined :minus")
            .condition_expression("joined > :zero")
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(build_err)?;
        let writes = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.transact_writes(writes).await {
            Ok(()) => Ok(()),
            // Not in that room (or the count was never kept): nothing to undo.
            Err(e) if any_condition_failed(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn members(&self, room: &Room) -> Result<Vec<Member>, StoreError> {
        let items = self
            .query_desc(
                &self.tables.connections,
                Some(GSI1),
                "gsi1pk",
                format!("ROOM#{}", room.key()),
                None,
                usize::MAX,
            )
            .await?;
        let now = epoch_after(Duration::zero());
        let mut members = Vec::with_capacity(items.len());
        for item in items {
            // TTL deletion lags; an expired record is not a member.
            if item.u64("expires_at").is_ok_and(|e| e < now) {
                continue;
            }
            members.push(Member {
                connection_id: ConnectionId(item.str("connection_id")?.to_owned()),
                executive_id: ExecutiveId::parse(item.str("executive_id")?)
                    .map_err(|_| StoreError::Corrupt("room item executive_id".into()))?,
            });
        }
        Ok(members)
    }

    async fn connections_of(
        &self,
        executive: &ExecutiveId,
    ) -> Result<Vec<ConnectionId>, StoreError> {
        let items = self
            .query_desc(
                &self.tables.connections,
                Some(GSI1),
                "gsi1pk",
                format!("USER#{executive}"),
                None,
                usize::MAX,
            )
            .await?;
        // A record whose `$disconnect` was lost lingers until TTL deletes it.
        let now = epoch_after(Duration::zero());
        items
            .iter()
            .filter(|i| {
                i.u64_or_zero("expires_at")
                    .map_or(true, |e| e == 0 || e > now)
            })
            .map(|i| Ok(ConnectionId(i.str("connection_id")?.to_owned())))
            .collect()
    }
}
