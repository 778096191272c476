//! Conversation facts: one row per conversation with the numbers revenue teams ask for,
//! computed from the conversation and its complete message list (docs/ANALYTICS.md defines
//! each). They ride in the same batch as the conversation's rows, so every destination gets
//! them and a sync refreshes them in the statement that writes them.
//!
//! Roles: a message's author is the contact (`contact`), the org's bot (a user flagged
//! `bot`), or an agent (any other user). Every message counts, private notes included, as
//! Drift's reporting counts them.

use drift_types::{AuthorType, Conversation, ConversationStatus, Message, OrgId};

use super::batch::Batch;
use super::defs::must;

/// The numbers of one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Facts {
    /// First message by the contact.
    pub first_contact_message_at: Option<i64>,
    /// First message by the bot.
    pub first_bot_message_at: Option<i64>,
    /// First message by a human agent.
    pub first_agent_message_at: Option<i64>,
    /// From the conversation's start to the first agent message (Drift's
    /// `timeToAgentResponseMillis`).
    pub time_to_first_agent_reply_ms: Option<i64>,
    /// When it closed: its last update, for a closed conversation (Drift's `firstCloseAt` as
    /// far as a fetch can tell).
    pub first_close_at: Option<i64>,
    /// From the start to the close (Drift's `timeToCloseMillis`).
    pub time_to_close_ms: Option<i64>,
    /// Messages by the contact.
    pub contact_messages: i64,
    /// Messages by agents.
    pub agent_messages: i64,
    /// Messages by the bot.
    pub bot_messages: i64,
    /// Distinct agents who wrote.
    pub distinct_agents: i64,
    /// The agent who wrote last.
    pub last_agent_id: Option<i64>,
}

impl Facts {
    /// The facts of `c` given all its messages.
    pub fn of(c: &Conversation, messages: &[Message]) -> Facts {
        let mut m: Vec<&Message> = messages.iter().collect();
        m.sort_by_key(|m| (m.created_at.0, m.id.0));
        let created = c.created_at.map(|t| t.0);
        let is_contact = |m: &&&Message| m.author.kind == AuthorType::Contact;
        let is_bot = |m: &&&Message| m.author.kind == AuthorType::User && m.author.bot;
        let is_agent = |m: &&&Message| m.author.kind == AuthorType::User && !m.author.bot;
        let first = |f: &dyn Fn(&&&Message) -> bool| m.iter().find(f).map(|m| m.created_at.0);
        let first_agent = first(&is_agent);
        let mut agents: Vec<i64> = m.iter().filter(is_agent).map(|m| m.author.id).collect();
        let last_agent_id = agents.last().copied();
        agents.sort_unstable();
        agents.dedup();
        let closed = (c.status == ConversationStatus::Closed)
            .then(|| c.updated_at.map(|t| t.0).or(created))
            .flatten();
        Facts {
            first_contact_message_at: first(&is_contact),
            first_bot_message_at: first(&is_bot),
            first_agent_message_at: first_agent,
            time_to_first_agent_reply_ms: first_agent.zip(created).map(|(a, c)| a - c),
            first_close_at: closed,
            time_to_close_ms: closed.zip(created).map(|(a, c)| a - c),
            contact_messages: m.iter().filter(is_contact).count() as i64,
            agent_messages: m.iter().filter(is_agent).count() as i64,
            bot_messages: m.iter().filter(is_bot).count() as i64,
            distinct_agents: agents.len() as i64,
            last_agent_id,
        }
    }
}

/// The outcomes of a conversation that other objects record: a met playbook goal (only the
/// `playbook_goal_met` webhook says so) and booked meetings (Drift's meetings list). A SQL
/// store recomputes them from its own tables after every write; a file export writes what
/// the export knew (docs/ANALYTICS.md). The first touch comes from the widget events
/// (docs/WIDGET.md) the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// A playbook goal was met in it.
    pub goal_met: bool,
    /// Meetings booked in it.
    pub meetings_booked: i64,
    /// The first touch of the visitor who had it, when the widget reported one.
    pub touch: crate::widget::Touch,
}

impl Batch {
    /// The facts row of a conversation, from all its messages and its known outcomes.
    pub fn conversation_facts(
        &mut self,
        org: OrgId,
        c: &Conversation,
        messages: &[Message],
        outcomes: Outcomes,
    ) {
        let f = Facts::of(c, messages);
        self.push(
            must("conversation_facts"),
            vec![
                org.0.into(),
                c.id.0.into(),
                c.status.as_str().into(),
                c.inbox_id.map(|x| x.0).into(),
                c.related_playbook_id.map(|x| x.0).into(),
                c.created_at.map(|x| x.0).into(),
                f.first_contact_message_at.into(),
                f.first_bot_message_at.into(),
                f.first_agent_message_at.into(),
                f.time_to_first_agent_reply_ms.into(),
                (f.agent_messages > 0).into(),
                (f.agent_messages == 0 && f.bot_messages > 0).into(),
                f.first_close_at.into(),
                f.time_to_close_ms.into(),
                f.contact_messages.into(),
                f.agent_messages.into(),
                f.bot_messages.into(),
                f.distinct_agents.into(),
                f.last_agent_id.into(),
                outcomes.goal_met.into(),
                outcomes.meetings_booked.into(),
                outcomes.touch.utm_source.into(),
                outcomes.touch.utm_medium.into(),
                outcomes.touch.utm_campaign.into(),
                outcomes.touch.landing_page.into(),
                outcomes.touch.referrer.into(),
            ],
        );
    }
}
