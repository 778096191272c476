//! The deterministic data generator: the same [`DataConfig`] always yields the same world.
//!
//! Every conversation draws from its own random stream (`Rng::derive(seed, index)`), so
//! sizes from a handful to 100,000 conversations share their first conversations.

use std::collections::BTreeMap;

use drift_types::{
    Account, Attachment, AttributeDefinition, Author, AuthorType, ButtonType, Contact, ContactId,
    ContactTag, Conversation, ConversationId, ConversationStatus, ConversationTag, CustomProperty,
    EpochMillis, InboxId, LandingPage, Location, Meeting, Message, MessageButton, MessageContext,
    MessageId, MessageType, OrgId, Playbook, PlaybookGoal, PlaybookId, User, UserId,
};
use serde_json::{Map, Value, json};

use crate::rng::Rng;
use crate::text::*;
use crate::world::{ConvRecord, Org, World};
use contact::{DAY_MS, contact, uuid_like};

mod contact;

/// 2026-01-01T00:00:00Z: a fixed "now" for a dataset that must not move with the calendar.
pub const FIXED_ANCHOR_MS: i64 = 1_767_225_600_000;

/// The default "now" of generated data: the start of the current UTC day, so recent data
/// (the last 30 days of meetings Drift serves, say) is recent whenever the simulator runs,
/// while a run's data stays the same all day.
pub fn today_anchor_ms() -> i64 {
    let now = drift_types::now_ms();
    now - now.rem_euclid(DAY_MS)
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct DataConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of orgs.
    pub orgs: u32,
    /// Conversations per org.
    pub conversations: u32,
    /// Agents per org (plus one bot).
    pub agents: u32,
    /// Fewest messages in a normal conversation.
    pub min_messages: u32,
    /// Most messages in a normal conversation; 5% of conversations are long (40–150).
    pub max_messages: u32,
    /// The "now" that generated timestamps lead up to.
    pub anchor_ms: i64,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            orgs: 1,
            conversations: 200,
            agents: 8,
            min_messages: 2,
            max_messages: 18,
            anchor_ms: today_anchor_ms(),
        }
    }
}

/// The first org id; later orgs count up from it.
pub const FIRST_ORG_ID: i64 = 5_000_883;
/// Created objects get ids above every generated one.
const CREATED_ID_BASE: i64 = 90_000_000_000_000;

/// Generates the world.
pub fn generate(cfg: &DataConfig) -> World {
    let mut world = World {
        orgs: BTreeMap::new(),
        next_id: CREATED_ID_BASE,
    };
    let mut next_message_id = 1_000_000_000_000i64;
    for k in 0..cfg.orgs {
        let org = generate_org(cfg, k, &mut next_message_id);
        world.orgs.insert(org.id, org);
    }
    world
}

fn generate_org(cfg: &DataConfig, k: u32, next_message_id: &mut i64) -> Org {
    let org_id = OrgId(FIRST_ORG_ID + i64::from(k));
    let mut rng = Rng::derive(cfg.seed, 0xFFFF_0000 + u64::from(k));
    let anchor = cfg.anchor_ms;
    let mut org = Org {
        id: org_id,
        inbox_id: 642_330 + i64::from(k),
        bot_id: UserId(5_028_000 + i64::from(k) * 1000),
        ..Org::default()
    };

    let user =
        |id: UserId, name: String, email: String, bot: bool, role: &str, rng: &mut Rng| User {
            id,
            org_id: Some(org_id),
            name: Some(name.clone()),
            alias: Some(name.split(' ').next().unwrap_or("").to_owned()),
            email: Some(email),
            phone: None,
            locale: Some("en-US".into()),
            availability: Some(rng.pick(&["AVAILABLE", "OFFLINE", "ON_CALL"]).to_string()),
            role: Some(role.into()),
            time_zone: Some(rng.pick(PLACES).3.into()),
            avatar_url: Some(format!("https://avatars.example/{}.png", id.get())),
            verified: !bot,
            bot,
            created_at: Some(EpochMillis(anchor - 400 * DAY_MS)),
            updated_at: Some(EpochMillis(anchor - rng.range(1, 300) * DAY_MS)),
        };
    let bot = user(
        org.bot_id,
        "Bot".into(),
        format!("bot+{org_id}@drift.example"),
        true,
        "agent",
        &mut rng,
    );
    org.users.insert(bot.id, bot);
    for i in 1..=cfg.agents {
        let id = UserId(org.bot_id.get() + i64::from(i));
        let name = format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES));
        let email = format!("agent{i}.{}@acme-sales.example", org_id);
        let role = if i == 1 { "admin" } else { "member" };
        let u = user(id, name, email, false, role, &mut rng);
        org.users.insert(id, u);
    }
    let agents: Vec<UserId> = org
        .users
        .keys()
        .copied()
        .filter(|u| *u != org.bot_id)
        .collect();

    org.attribute_defs = vec![
        def("lead_score", "Lead score", "NUMERIC"),
        def("plan", "Plan", "STRING"),
        def("trial_started", "Trial started", "DATE"),
        def("is_customer", "Is customer", "BOOLEAN"),
    ];

    for j in 0..6i64 {
        let id = PlaybookId(2_310_900 + i64::from(k) * 100 + j);
        let names = [
            "Welcome",
            "Pricing page",
            "Book a demo",
            "Trial signup",
            "Support triage",
            "Re-engage",
        ];
        let goals = (0..rng.range(1, 2))
            .map(|g| PlaybookGoal {
                id: uuid_like(&mut rng),
                message: ["Email captured", "Meeting booked"][g as usize].into(),
            })
            .collect();
        org.playbooks.push(Playbook {
            id,
            name: names[j as usize].into(),
            org_id: Some(org_id),
            meta: Some(json!({"channel": "website"})),
            created_at: Some(EpochMillis(anchor - 200 * DAY_MS)),
            updated_at: Some(EpochMillis(anchor - rng.range(1, 100) * DAY_MS)),
            created_author_id: Some(*rng.pick(&agents)),
            updated_author_id: Some(*rng.pick(&agents)),
            interaction_id: Some(300_000 + id.get()),
            report_type: Some(
                rng.pick(&["BOOK_MORE_MEETINGS", "GET_MORE_LEADS"])
                    .to_string(),
            ),
            goals,
        });
    }
    for p in org.playbooks.iter().take(2) {
        org.landing_pages.push(LandingPage {
            id: p.id,
            name: p.name.clone(),
            url: format!("https://go.acme-sales.example/lp/{}", p.id),
        });
    }

    let n_accounts = (cfg.conversations / 25).max(3);
    for a in 0..n_accounts {
        let (company, domain) = COMPANIES[a as usize % COMPANIES.len()];
        let round = a as usize / COMPANIES.len();
        let domain = if round == 0 {
            domain.to_owned()
        } else {
            format!("{round}-{domain}")
        };
        let created = anchor - rng.range(10, 300) * DAY_MS;
        let account = Account {
            account_id: format!("{}_{}", 123_458 + i64::from(a), domain),
            owner_id: Some(*rng.pick(&agents)),
            name: Some(if round == 0 {
                company.into()
            } else {
                format!("{company} {round}")
            }),
            domain: Some(domain.clone()),
            custom_properties: vec![
                prop(
                    "industry",
                    "Industry",
                    json!(rng.pick(&["SaaS", "Finance", "Health", "Retail"])),
                    "ENUM",
                ),
                prop(
                    "employees",
                    "Employees",
                    json!(rng.range(10, 5000)),
                    "NUMBER",
                ),
                prop(
                    "website",
                    "Website",
                    json!(format!("https://{domain}")),
                    "URL",
                ),
            ],
            deleted: false,
            create_date_time: Some(EpochMillis(created)),
            update_date_time: Some(EpochMillis(created + rng.range(0, 9) * DAY_MS)),
            targeted: rng.chance(0.3),
        };
        org.accounts.insert(account.account_id.clone(), account);
    }

    let n_contacts = (cfg.conversations * 7 / 10).max(1);
    let contact_base = 11_409_060_726 + i64::from(k) * 100_000_000;
    for i in 0..n_contacts {
        let mut crng = Rng::derive(cfg.seed, (u64::from(k) << 40) | (1 << 39) | u64::from(i));
        let id = ContactId(contact_base + i64::from(i) * 13);
        org.contacts.insert(id, contact(&mut crng, id, i, anchor));
        // Every fifth contact has legacy tags, derived from its position so that the rest
        // of the generated world does not change.
        if i % 5 == 0 {
            let tags = CONTACT_TAGS[..1 + (i as usize / 5) % CONTACT_TAGS.len()]
                .iter()
                .map(|(name, color)| ContactTag {
                    name: (*name).into(),
                    color: color.map(str::to_owned),
                })
                .collect();
            org.set_tags(id, tags);
        }
    }
    let contact_ids: Vec<ContactId> = org.contacts.keys().copied().collect();

    let conv_base = 3_275_727_977 + i64::from(k) * 1_000_000_000;
    for i in 0..cfg.conversations {
        let mut crng = Rng::derive(cfg.seed, (u64::from(k) << 40) | u64::from(i));
        let id = ConversationId(conv_base + i64::from(i) * 7);
        let contact_id = *crng.pick(&contact_ids);
        let contact = &org.contacts[&contact_id];
        let record = conversation(cfg, &mut crng, &org, id, contact, &agents, next_message_id);
        if let Some(agent) = record
            .conversation
            .participants
            .iter()
            .find(|p| **p != org.bot_id)
            && crng.chance(0.12)
        {
            org.meetings
                .push(meeting(&mut crng, &record, *agent, contact));
        }
        org.insert_conversation(record);
    }
    org
}

/// Legacy contact tags the generator gives (name, colour).
const CONTACT_TAGS: [(&str, Option<&str>); 3] = [
    ("newsletter", Some("4a90e2")),
    ("trial", None),
    ("enterprise", Some("f5a623")),
];

/// Files contacts send.
const FILES: [(&str, &str); 4] = [
    ("screenshot.png", "image/png"),
    ("invoice.pdf", "application/pdf"),
    (
        "requirements.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("logs.txt", "text/plain"),
];

/// Document ids are the message's id plus this.
pub const ATTACHMENT_ID_BASE: i64 = 700_000_000_000;

/// Every 17th contact chat message carries a file: derived from the message id, so the rest
/// of the generated world does not change. Drift documents `{fileName, mimeType, url}`; the
/// document `id` and `size` are house fields (drift-api.md §10.2 marks attachments uncertain).
pub fn attachment(
    message: MessageId,
    kind: &MessageType,
    author: &AuthorType,
) -> Option<Attachment> {
    if message.0 % 17 != 0 || *kind != MessageType::Chat || *author != AuthorType::Contact {
        return None;
    }
    let id = ATTACHMENT_ID_BASE + message.0;
    let (name, mime) = FILES[(message.0 / 17) as usize % FILES.len()];
    Some(Attachment {
        file_name: name.into(),
        mime_type: mime.into(),
        url: format!("https://driftapi.com/attachments/{id}/data"),
        id: Some(id),
        size: Some(attachment_bytes(id).len() as i64),
    })
}

/// The bytes of a generated attachment: a few hundred bytes to a few kilobytes of text that
/// name it.
pub fn attachment_bytes(id: i64) -> Vec<u8> {
    let line = format!("driftbridge simulator attachment {id}\n");
    line.repeat(8 + (id % 97) as usize).into_bytes()
}

fn def(name: &str, display: &str, kind: &str) -> AttributeDefinition {
    AttributeDefinition {
        kind: kind.into(),
        display_name: display.into(),
        name: name.into(),
    }
}

fn prop(name: &str, label: &str, value: Value, kind: &str) -> CustomProperty {
    CustomProperty {
        label: label.into(),
        name: name.into(),
        value,
        kind: kind.into(),
    }
}

fn conversation(
    cfg: &DataConfig,
    rng: &mut Rng,
    org: &Org,
    id: ConversationId,
    contact: &Contact,
    agents: &[UserId],
    next_message_id: &mut i64,
) -> ConvRecord {
    let created = cfg.anchor_ms - rng.range(60_000, 90 * DAY_MS);
    let status = match rng.below(100) {
        0..55 => ConversationStatus::Closed,
        55..80 => ConversationStatus::Open,
        80..92 => ConversationStatus::Pending,
        _ => ConversationStatus::BulkSent,
    };
    let playbook = rng.chance(0.7).then(|| rng.pick(&org.playbooks).id);
    let n = if status == ConversationStatus::BulkSent {
        1
    } else if rng.chance(0.05) {
        rng.range(40, 150) as u32
    } else {
        rng.range(
            i64::from(cfg.min_messages),
            i64::from(cfg.max_messages.max(cfg.min_messages)),
        ) as u32
    };
    let agent = *rng.pick(agents);
    let mut t = created;
    let mut messages = Vec::with_capacity(n as usize);
    let mut participants: Vec<UserId> = Vec::new();
    let (city, state, st, tz, lat, lon) = *rng.pick(PLACES);
    for j in 0..n {
        let mut next_id = || {
            *next_message_id += 1;
            MessageId(*next_message_id)
        };
        let (author, kind, body, buttons, context, attributes) = if j == 0 && playbook.is_some() {
            let buttons = vec![button("Yes please"), button("No thanks")];
            (
                bot_author(org),
                MessageType::Chat,
                Some(BOT_LINES[0].to_owned()),
                Some(buttons),
                None,
                None,
            )
        } else if j == 0 || (j % 2 == 1 && rng.chance(0.85)) {
            let first_contact = messages
                .iter()
                .all(|m: &Message| m.author.kind != AuthorType::Contact);
            let context = first_contact.then(|| MessageContext {
                ip: contact.attributes.get("ip").and_then(Value::as_str).map(str::to_owned),
                user_agent: Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15".into()),
                title: Some("Acme Sales — Pricing".into()),
                referrer: Some("https://www.google.com/".into()),
                timezone: Some(tz.into()),
                locale: Some("en-US".into()),
                href: Some("https://www.acme-sales.example/pricing".into()),
                location: Some(Location {
                    city: Some(city.into()),
                    region: Some(state.into()),
                    country: Some("US".into()),
                    country_name: Some("United States".into()),
                    postal_code: Some(format!("{:05}", rng.range(1000, 99_950))),
                    latitude: Some(lat),
                    longitude: Some(lon),
                }),
                extra: Map::new(),
            });
            let attributes = (first_contact && playbook.is_some()).then(|| {
                let mut m = Map::new();
                m.insert(
                    "preMessages".into(),
                    json!([{"body": BOT_LINES[0], "sentAt": t}]),
                );
                m
            });
            let _ = st;
            let author = Author {
                kind: AuthorType::Contact,
                id: contact.id.get(),
                bot: false,
            };
            (
                author,
                MessageType::Chat,
                Some(rng.pick(CONTACT_LINES).to_string()),
                None,
                context,
                attributes,
            )
        } else if rng.chance(0.1) {
            let a = Author {
                kind: AuthorType::User,
                id: agent.get(),
                bot: false,
            };
            (
                a,
                MessageType::PrivateNote,
                Some(rng.pick(NOTES).to_string()),
                None,
                None,
                None,
            )
        } else if j < 3 && rng.chance(0.5) {
            (
                bot_author(org),
                MessageType::Chat,
                Some(rng.pick(BOT_LINES).to_string()),
                None,
                None,
                None,
            )
        } else {
            let a = Author {
                kind: AuthorType::User,
                id: agent.get(),
                bot: false,
            };
            (
                a,
                MessageType::Chat,
                Some(rng.pick(AGENT_LINES).to_string()),
                None,
                None,
                None,
            )
        };
        if let Some(u) = author.user_id()
            && !participants.contains(&u)
        {
            participants.push(u);
        }
        let message_id = next_id();
        let attachments = attachment(message_id, &kind, &author.kind).map(|a| vec![a]);
        messages.push(Message {
            id: message_id,
            org_id: Some(org.id),
            conversation_id: id,
            created_at: EpochMillis(t),
            body,
            author,
            kind,
            buttons,
            context,
            attributes,
            edited_message_id: None,
            edit_type: None,
            attachments,
        });
        t += rng.range(2_000, 240_000);
    }
    let updated = messages.last().map_or(created, |m| m.created_at.get())
        + if status == ConversationStatus::Closed {
            rng.range(1_000, 600_000)
        } else {
            0
        };
    let tags = if rng.chance(0.2) {
        vec![ConversationTag {
            color: Some("f5a623".into()),
            name: (*rng.pick(&["sales-qualified", "support", "pricing"])).into(),
        }]
    } else {
        vec![]
    };
    ConvRecord {
        conversation: Conversation {
            id,
            participants,
            status,
            contact_id: Some(contact.id),
            inbox_id: Some(InboxId(org.inbox_id)),
            created_at: Some(EpochMillis(created)),
            updated_at: Some(EpochMillis(updated)),
            org_id: Some(org.id),
            related_playbook_id: playbook,
            conversation_tags: tags,
        },
        messages,
    }
}

fn bot_author(org: &Org) -> Author {
    Author {
        kind: AuthorType::User,
        id: org.bot_id.get(),
        bot: true,
    }
}

fn button(label: &str) -> MessageButton {
    MessageButton {
        label: label.into(),
        value: label.into(),
        kind: ButtonType::Reply,
        style: (label == "Yes please").then(|| "primary".into()),
        reaction: None,
    }
}

fn meeting(rng: &mut Rng, record: &ConvRecord, agent: UserId, contact: &Contact) -> Meeting {
    let c = &record.conversation;
    let booked = c.updated_at.map_or(0, |t| t.get());
    let start = booked + rng.range(1, 10) * DAY_MS;
    Meeting {
        agent_id: Some(agent),
        org_id: c.org_id,
        status: Some("ACTIVE".into()),
        meeting_source: Some(rng.pick(&["CHAT", "EMAIL_DROP"]).to_string()),
        scheduler_id: Some(contact.id),
        event_id: Some(format!("evt_{:016x}", rng.next_u64())),
        slug: Some(format!("mtg-{:012x}", rng.next_u64() & 0xffff_ffff_ffff)),
        slot_start: Some(EpochMillis(start)),
        slot_end: Some(EpochMillis(start + 30 * 60_000)),
        updated_at: Some(EpochMillis(booked)),
        scheduled_at: Some(EpochMillis(booked)),
        meeting_type: Some("New Meeting".into()),
        conversation_id: Some(c.id),
        end_user_time_zone: contact
            .attributes
            .get("timezone")
            .and_then(Value::as_str)
            .map(str::to_owned),
        meeting_notes: None,
        booked_by: Some(contact.id.get()),
    }
}
