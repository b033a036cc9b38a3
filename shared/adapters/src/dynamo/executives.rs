//! Executives: their records, unique e-mail addresses, the list index.

use super::*;

pub(super) fn executive_from(item: &Item) -> Result<Executive, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("executive item: {what}"));
    Ok(Executive {
        executive_id: ExecutiveId::parse(item.str("executive_id")?).map_err(|_| bad("id"))?,
        name: item.str("name")?.to_owned(),
        email: Email::parse(item.str("email")?).map_err(|_| bad("email"))?,
        password_hash: item.str("password_hash")?.to_owned(),
        role: match item.str("role")? {
            "admin" => Role::Admin,
            "agent" => Role::Agent,
            _ => return Err(bad("role")),
        },
        stakeholders: item
            .str_list("stakeholders")
            .into_iter()
            .map(|x| Stakeholder::parse(x).map_err(|_| bad("stakeholders")))
            .collect::<Result<_, _>>()?,
        disabled: item.bool_or("disabled", false),
        capacity: match item.get("capacity") {
            None => domain::executive::DEFAULT_CAPACITY,
            Some(_) => u32::try_from(item.u64_or_zero("capacity")?).map_err(|_| bad("capacity"))?,
        },
        token_generation: item.u64_or_zero("token_generation")?,
    })
}

impl ExecutiveStore for DynamoStore {
    async fn executive(&self, id: &ExecutiveId) -> Result<Option<Executive>, StoreError> {
        self.get(
            &self.tables.executives,
            key(format!("EXEC#{id}"), "PROFILE"),
        )
        .await?
        .as_ref()
        .map(executive_from)
        .transpose()
    }

    async fn executive_by_email(&self, email: &Email) -> Result<Option<Executive>, StoreError> {
        let Some(guard) = self
            .get(
                &self.tables.executives,
                key(format!("EMAIL#{}", email.as_str()), "EMAIL"),
            )
            .await?
        else {
            return Ok(None);
        };
        let id = ExecutiveId::parse(guard.str("executive_id")?)
            .map_err(|_| StoreError::Corrupt("email guard".into()))?;
        self.executive(&id).await
    }

    async fn put_executive(&self, e: &Executive) -> Result<(), StoreError> {
        let table = &self.tables.executives;
        let mut profile = key(format!("EXEC#{}", e.executive_id), "PROFILE");
        profile.insert("executive_id".into(), s(e.executive_id.as_str()));
        profile.insert("name".into(), s(&e.name));
        profile.insert("email".into(), s(e.email.as_str()));
        profile.insert("password_hash".into(), s(&e.password_hash));
        let role = match e.role {
            Role::Agent => "agent",
            Role::Admin => "admin",
        };
        profile.insert("role".into(), s(role));
        profile.insert(
            "stakeholders".into(),
            AttributeValue::L(e.stakeholders.iter().map(|x| s(x.as_str())).collect()),
        );
        profile.insert("disabled".into(), AttributeValue::Bool(e.disabled));
        profile.insert("capacity".into(), n(u64::from(e.capacity)));
        profile.insert("token_generation".into(), n(e.token_generation));
        // One partition lists every executive (tens, not millions).
        profile.insert("gsi1pk".into(), s(EXECUTIVES_LIST));
        profile.insert("gsi1sk".into(), s(e.email.as_str()));
        let previous = self.executive(&e.executive_id).await?;
        let mut guard = key(format!("EMAIL#{}", e.email.as_str()), "EMAIL");
        guard.insert("executive_id".into(), s(e.executive_id.as_str()));
        let put_guard = Put::builder()
            .table_name(table)
            .set_item(Some(guard))
            .condition_expression("attribute_not_exists(pk) OR executive_id = :id")
            .expression_attribute_values(":id", s(e.executive_id.as_str()))
            .build()
            .map_err(build_err)?;
        let put_profile = Put::builder()
            .table_name(table)
            .set_item(Some(profile))
            .build()
            .map_err(build_err)?;
        let mut writes = vec![
            TransactWriteItem::builder().put(put_guard).build(),
            TransactWriteItem::builder().put(put_profile).build(),
        ];
        // A changed address frees the old one, in the same transaction.
        if let Some(old) = previous.filter(|p| p.email != e.email) {
            let release = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(table)
                .set_key(Some(key(format!("EMAIL#{}", old.email.as_str()), "EMAIL")))
                .condition_expression("executive_id = :id")
                .expression_attribute_values(":id", s(e.executive_id.as_str()))
                .build()
                .map_err(build_err)?;
            writes.push(TransactWriteItem::builder().delete(release).build());
        }
        match self.transact_writes(writes).await {
            Ok(_) => Ok(()),
            Err(err) if first_condition_failed(&err) => Err(StoreError::Conflict(format!(
                "e-mail {} belongs to another executive",
                e.email.as_str()
            ))),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn executives(&self) -> Result<Vec<Executive>, StoreError> {
        let mut items = self
            .query_desc(
                &self.tables.executives,
                Some(GSI1),
                "gsi1pk",
                EXECUTIVES_LIST.to_owned(),
                None,
                usize::MAX,
            )
            .await?;
        items.reverse();
        items.iter().map(executive_from).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        for table in [
            &self.tables.chats,
            &self.tables.connections,
            &self.tables.executives,
        ] {
            self.client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}
