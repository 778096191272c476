//! The simulator's data: orgs with users, contacts, conversations and their messages,
//! accounts, playbooks and meetings, plus the mutations the REST API and the control API make.
//!
//! Conversations are indexed by `(updatedAt, id)` so that list pages are keyset range scans:
//! a walk sees every conversation once even when the dataset is large.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use drift_types::{
    Account, AccountWrite, AttributeDefinition, Author, AuthorType, Contact, ContactAttributes,
    ContactId, ContactTag, Conversation, ConversationId, ConversationStatus, EpochMillis, InboxId,
    LandingPage, Meeting, Message, MessageId, MessageType, NewMessage, OrgId, Playbook,
    TimelineEvent, User, UserId,
};
use serde_json::{Map, Value};

/// A conversation and its messages in creation order.
#[derive(Clone, Debug)]
pub struct ConvRecord {
    /// The full conversation object.
    pub conversation: Conversation,
    /// Messages, oldest first.
    pub messages: Vec<Message>,
}

/// One Drift organisation.
#[derive(Debug, Default)]
pub struct Org {
    /// Org id.
    pub id: OrgId,
    /// The org's inbox.
    pub inbox_id: i64,
    /// Users, including the bot.
    pub users: BTreeMap<UserId, User>,
    /// The bot user.
    pub bot_id: UserId,
    /// Contacts.
    pub contacts: BTreeMap<ContactId, Contact>,
    /// Legacy contact tags.
    pub contact_tags: HashMap<ContactId, Vec<ContactTag>>,
    /// Posted timeline events.
    pub timeline: Vec<TimelineEvent>,
    /// Custom attribute definitions.
    pub attribute_defs: Vec<AttributeDefinition>,
    /// Conversations by id.
    pub conversations: HashMap<ConversationId, ConvRecord>,
    /// `(updatedAt, id)` of every conversation, for newest-first keyset pagination.
    pub by_updated: BTreeSet<(i64, i64)>,
    /// Accounts by Drift account id.
    pub accounts: BTreeMap<String, Account>,
    /// Playbooks.
    pub playbooks: Vec<Playbook>,
    /// Conversational landing pages.
    pub landing_pages: Vec<LandingPage>,
    /// Booked meetings.
    pub meetings: Vec<Meeting>,
    /// Message attachments by document id (`GET /attachments/{id}/data`).
    pub attachments: HashMap<i64, drift_types::Attachment>,
}

/// Why a mutation was refused; maps onto the Drift error types.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// 404 `not_found`.
    #[error("{0} not found")]
    NotFound(String),
    /// 409 `conflict`.
    #[error("{0}")]
    Conflict(String),
    /// 400 `validation_error`.
    #[error("{0}")]
    Invalid(String),
}

/// All orgs plus the id counters for created objects.
#[derive(Debug, Default)]
pub struct World {
    /// Orgs by id.
    pub orgs: BTreeMap<OrgId, Org>,
    /// Next id for created conversations, contacts and messages.
    pub next_id: i64,
}

impl World {
    /// A fresh id for a created object.
    pub fn fresh_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// The org, or `not_found`.
    pub fn org(&self, org: OrgId) -> Result<&Org, WorldError> {
        self.orgs
            .get(&org)
            .ok_or_else(|| WorldError::NotFound(format!("org {org}")))
    }

    /// The org, mutably.
    pub fn org_mut(&mut self, org: OrgId) -> Result<&mut Org, WorldError> {
        self.orgs
            .get_mut(&org)
            .ok_or_else(|| WorldError::NotFound(format!("org {org}")))
    }

    /// Total conversations and messages across orgs.
    pub fn counts(&self) -> (usize, usize) {
        self.orgs.values().fold((0, 0), |(c, m), o| {
            (
                c + o.conversations.len(),
                m + o
                    .conversations
                    .values()
                    .map(|r| r.messages.len())
                    .sum::<usize>(),
            )
        })
    }

    /// `POST /conversations/new`: find the earliest contact with `email` or create one, and
    /// open a conversation with one contact message.
    pub fn create_conversation(
        &mut self,
        org_id: OrgId,
        email: &str,
        body: &str,
        attributes: Option<Map<String, Value>>,
        now: EpochMillis,
    ) -> Result<Conversation, WorldError> {
        if !email.contains('@') {
            return Err(WorldError::Invalid(format!("{email:?} is not an email")));
        }
        let conv_id = ConversationId(self.fresh_id());
        let msg_id = MessageId(self.fresh_id());
        let new_contact_id = ContactId(self.fresh_id());
        let org = self.org_mut(org_id)?;
        let contact_id = match org.contacts_by_email(email).first() {
            Some(c) => c.id,
            None => {
                let mut attrs = Map::new();
                attrs.insert("email".into(), email.into());
                org.contacts.insert(
                    new_contact_id,
                    Contact {
                        id: new_contact_id,
                        created_at: Some(now),
                        attributes: ContactAttributes(attrs),
                    },
                );
                new_contact_id
            }
        };
        let conversation = Conversation {
            id: conv_id,
            participants: vec![],
            status: ConversationStatus::Open,
            contact_id: Some(contact_id),
            inbox_id: Some(InboxId(org.inbox_id)),
            created_at: Some(now),
            updated_at: Some(now),
            org_id: Some(org_id),
            related_playbook_id: None,
            conversation_tags: vec![],
        };
        let message = Message {
            id: msg_id,
            org_id: Some(org_id),
            conversation_id: conv_id,
            created_at: now,
            body: Some(body.to_owned()),
            author: Author {
                kind: AuthorType::Contact,
                id: contact_id.get(),
                bot: false,
            },
            kind: MessageType::Chat,
            buttons: None,
            context: None,
            attributes,
            edited_message_id: None,
            edit_type: None,
            attachments: None,
        };
        org.insert_conversation(ConvRecord {
            conversation: conversation.clone(),
            messages: vec![message],
        });
        Ok(conversation)
    }

    /// `POST /conversations/{id}/messages`: the bot writes unless `userId` is given.
    pub fn post_message(
        &mut self,
        org_id: OrgId,
        conv_id: ConversationId,
        new: &NewMessage,
        app_id: &str,
        now: EpochMillis,
    ) -> Result<Message, WorldError> {
        let id = MessageId(self.fresh_id());
        let org = self.org_mut(org_id)?;
        let author_id = new.user_id.unwrap_or(org.bot_id);
        let author = org
            .users
            .get(&author_id)
            .ok_or_else(|| WorldError::Invalid(format!("userId {author_id} is not a user")))?;
        let author = Author {
            kind: AuthorType::User,
            id: author_id.get(),
            bot: author.bot,
        };
        let mut attrs = Map::new();
        attrs.insert("developer_app_id".into(), app_id.into());
        let message = Message {
            id,
            org_id: Some(org_id),
            conversation_id: conv_id,
            created_at: now,
            body: new.body.clone(),
            author,
            kind: new.kind.clone(),
            buttons: new.buttons.clone(),
            context: None,
            attributes: Some(attrs),
            edited_message_id: new.edited_message_id,
            edit_type: new.edit_type.clone(),
            attachments: None,
        };
        org.append_message(conv_id, message.clone())?;
        Ok(message)
    }
}

impl Org {
    /// Replaces a contact's legacy tags: the tag list and its `tags` attribute, as Drift
    /// shows them in both places (drift-api.md §10.4).
    pub fn set_tags(&mut self, id: ContactId, tags: Vec<ContactTag>) {
        if let Some(c) = self.contacts.get_mut(&id) {
            if tags.is_empty() {
                c.attributes.0.remove("tags");
            } else {
                c.attributes.0.insert(
                    "tags".into(),
                    serde_json::to_value(&tags).unwrap_or_default(),
                );
            }
        }
        if tags.is_empty() {
            self.contact_tags.remove(&id);
        } else {
            self.contact_tags.insert(id, tags);
        }
    }

    /// A conversation, or `not_found` ("conversation N not found").
    pub fn conversation(&self, id: ConversationId) -> Result<&ConvRecord, WorldError> {
        self.conversations
            .get(&id)
            .ok_or_else(|| WorldError::NotFound(format!("conversation {id}")))
    }

    /// Adds a conversation and indexes it.
    pub fn insert_conversation(&mut self, record: ConvRecord) {
        for a in record
            .messages
            .iter()
            .flat_map(|m| m.attachments.iter().flatten())
        {
            if let Some(id) = a.id {
                self.attachments.insert(id, a.clone());
            }
        }
        let c = &record.conversation;
        self.by_updated
            .insert((c.updated_at.map_or(0, |t| t.get()), c.id.get()));
        self.conversations.insert(c.id, record);
    }

    /// Removes a conversation and its index entry.
    pub fn remove_conversation(&mut self, id: ConversationId) -> Option<ConvRecord> {
        let record = self.conversations.remove(&id)?;
        let updated = record.conversation.updated_at.map_or(0, |t| t.get());
        self.by_updated.remove(&(updated, id.get()));
        Some(record)
    }

    /// Appends a message, bumps `updatedAt`, reopens a closed conversation on a contact
    /// message and records a user author as participant.
    pub fn append_message(
        &mut self,
        conv_id: ConversationId,
        message: Message,
    ) -> Result<(), WorldError> {
        let mut record = self
            .remove_conversation(conv_id)
            .ok_or_else(|| WorldError::NotFound(format!("conversation {conv_id}")))?;
        let c = &mut record.conversation;
        let at = message.created_at.max(c.updated_at.unwrap_or_default());
        c.updated_at = Some(at);
        match message.author.user_id() {
            Some(user) if !c.participants.contains(&user) => c.participants.push(user),
            Some(_) => {}
            None if c.status == ConversationStatus::Closed => c.status = ConversationStatus::Open,
            None => {}
        }
        record.messages.push(message);
        self.insert_conversation(record);
        Ok(())
    }

    /// Sets a conversation's status and bumps `updatedAt`.
    pub fn set_status(
        &mut self,
        conv_id: ConversationId,
        status: ConversationStatus,
        now: EpochMillis,
    ) -> Result<(), WorldError> {
        let mut record = self
            .remove_conversation(conv_id)
            .ok_or_else(|| WorldError::NotFound(format!("conversation {conv_id}")))?;
        record.conversation.status = status;
        record.conversation.updated_at = Some(now);
        self.insert_conversation(record);
        Ok(())
    }

    /// Contacts with `email`, earliest first.
    pub fn contacts_by_email(&self, email: &str) -> Vec<&Contact> {
        let mut v: Vec<&Contact> = self
            .contacts
            .values()
            .filter(|c| {
                c.attributes
                    .email()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .collect();
        v.sort_by_key(|c| (c.created_at, c.id));
        v
    }

    /// Contacts with one of `ids` as external id.
    pub fn contacts_by_external_id(&self, ids: &[String]) -> Vec<&Contact> {
        self.contacts
            .values()
            .filter(|c| {
                c.attributes
                    .external_id()
                    .is_some_and(|e| ids.iter().any(|i| i == e))
            })
            .collect()
    }

    /// `POST /contacts`: email required; a duplicate email is a conflict unless a distinct
    /// `externalId` is given.
    pub fn create_contact(
        &mut self,
        id: ContactId,
        attributes: Map<String, Value>,
        now: EpochMillis,
    ) -> Result<Contact, WorldError> {
        let attrs = ContactAttributes(attributes);
        let email = attrs
            .email()
            .ok_or_else(|| WorldError::Invalid("attributes.email is required".into()))?;
        let existing = self.contacts_by_email(email);
        if !existing.is_empty() {
            let distinct = attrs.external_id().is_some_and(|x| {
                existing
                    .iter()
                    .all(|c| c.attributes.external_id() != Some(x))
            });
            if !distinct {
                return Err(WorldError::Conflict(format!(
                    "a contact with email {email} already exists"
                )));
            }
        }
        let mut attrs = attrs.0;
        attrs.retain(|_, v| !v.is_null());
        let contact = Contact {
            id,
            created_at: Some(now),
            attributes: ContactAttributes(attrs),
        };
        self.contacts.insert(id, contact.clone());
        Ok(contact)
    }

    /// `PATCH /contacts/{id}`: sets the given attributes; null removes one.
    pub fn update_contact(
        &mut self,
        id: ContactId,
        attributes: Map<String, Value>,
    ) -> Result<Contact, WorldError> {
        let contact = self
            .contacts
            .get_mut(&id)
            .ok_or_else(|| WorldError::NotFound(format!("contact {id}")))?;
        for (k, v) in attributes {
            if v.is_null() {
                contact.attributes.0.remove(&k);
            } else {
                contact.attributes.0.insert(k, v);
            }
        }
        Ok(contact.clone())
    }

    /// `POST /accounts/create`.
    pub fn create_account(
        &mut self,
        w: AccountWrite,
        seq: i64,
        now: EpochMillis,
    ) -> Result<Account, WorldError> {
        if !self.users.contains_key(&w.owner_id) {
            return Err(WorldError::Invalid(format!(
                "ownerId {} is not a user",
                w.owner_id
            )));
        }
        let domain = w.domain.clone().unwrap_or_default();
        if !domain.is_empty()
            && self
                .accounts
                .values()
                .any(|a| !a.deleted && a.domain.as_deref() == Some(&domain))
        {
            return Err(WorldError::Conflict(format!(
                "an account with domain {domain} already exists"
            )));
        }
        let account = Account {
            account_id: format!("{seq}_{domain}"),
            owner_id: Some(w.owner_id),
            name: w.name,
            domain: w.domain,
            custom_properties: w.custom_properties,
            deleted: false,
            create_date_time: Some(now),
            update_date_time: Some(now),
            targeted: w.targeted.unwrap_or(false),
        };
        self.accounts
            .insert(account.account_id.clone(), account.clone());
        Ok(account)
    }

    /// `PATCH /accounts/update`.
    pub fn update_account(
        &mut self,
        w: AccountWrite,
        now: EpochMillis,
    ) -> Result<Account, WorldError> {
        let id = w
            .account_id
            .clone()
            .ok_or_else(|| WorldError::Invalid("accountId is required".into()))?;
        let a = self
            .accounts
            .get_mut(&id)
            .ok_or_else(|| WorldError::NotFound(format!("account {id}")))?;
        a.owner_id = Some(w.owner_id);
        if w.name.is_some() {
            a.name = w.name;
        }
        if w.domain.is_some() {
            a.domain = w.domain;
        }
        if !w.custom_properties.is_empty() {
            a.custom_properties = w.custom_properties;
        }
        if let Some(t) = w.targeted {
            a.targeted = t;
        }
        a.update_date_time = Some(now);
        Ok(a.clone())
    }

    /// GDPR erasure: removes every contact with `email`, their conversations, and users with
    /// that email are anonymised. Returns (contacts, conversations) removed.
    pub fn erase_email(&mut self, email: &str) -> (usize, usize) {
        let ids: Vec<ContactId> = self.contacts_by_email(email).iter().map(|c| c.id).collect();
        let convs: Vec<ConversationId> = self
            .conversations
            .values()
            .filter(|r| r.conversation.contact_id.is_some_and(|c| ids.contains(&c)))
            .map(|r| r.conversation.id)
            .collect();
        for c in &convs {
            self.remove_conversation(*c);
        }
        for id in &ids {
            self.contacts.remove(id);
            self.contact_tags.remove(id);
        }
        self.meetings
            .retain(|m| m.scheduler_id.is_none_or(|s| !ids.contains(&s)));
        (ids.len(), convs.len())
    }
}
