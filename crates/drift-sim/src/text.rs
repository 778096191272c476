//! Word lists and the Drift-style plain-text transcript (drift-api.md §11).

use drift_types::{AuthorType, Contact, Message, MessageType, User};

pub const FIRST_NAMES: &[&str] = &[
    "Gregg", "Maya", "Liam", "Priya", "Noah", "Sofia", "Ethan", "Aisha", "Lucas", "Chen", "Olivia",
    "Mateo", "Hannah", "Kofi", "Elena", "Ravi", "Grace", "Tomás", "Yuki", "Amara",
];
pub const LAST_NAMES: &[&str] = &[
    "Parker", "Nguyen", "Smith", "Patel", "Garcia", "Kim", "Müller", "Okafor", "Rossi", "Silva",
    "Johnson", "Cohen", "Dubois", "Larsen", "Tanaka", "O'Brien", "Ivanova", "Haddad",
];
pub const COMPANIES: &[(&str, &str)] = &[
    ("Camp Waziyatah", "waziyatah.com"),
    ("Northwind Traders", "northwind.example"),
    ("Acme Analytics", "acme-analytics.example"),
    ("Blue Harbor Bank", "blueharbor.example"),
    ("Globex Logistics", "globex.example"),
    ("Initech Software", "initech.example"),
    ("Umbrella Health", "umbrella-health.example"),
    ("Stark Robotics", "stark-robotics.example"),
    ("Wayne Capital", "wayne-capital.example"),
    ("Hooli Cloud", "hooli.example"),
    ("Vandelay Industries", "vandelay.example"),
    ("Soylent Foods", "soylent.example"),
];
pub const PLACES: &[(&str, &str, &str, &str, f64, f64)] = &[
    (
        "Boston",
        "Massachusetts",
        "MA",
        "America/New_York",
        42.36,
        -71.06,
    ),
    (
        "Los Angeles",
        "California",
        "CA",
        "America/Los_Angeles",
        34.05,
        -118.24,
    ),
    ("Austin", "Texas", "TX", "America/Chicago", 30.27, -97.74),
    (
        "Seattle",
        "Washington",
        "WA",
        "America/Los_Angeles",
        47.61,
        -122.33,
    ),
    (
        "Chicago",
        "Illinois",
        "IL",
        "America/Chicago",
        41.88,
        -87.63,
    ),
    ("Denver", "Colorado", "CO", "America/Denver", 39.74, -104.99),
    (
        "New York",
        "New York",
        "NY",
        "America/New_York",
        40.71,
        -74.01,
    ),
];
pub const TITLES: &[(&str, &str, &str)] = &[
    ("Owner, Director", "owner", "executive"),
    ("VP Marketing", "marketing", "executive"),
    ("Demand Gen Manager", "marketing", "manager"),
    ("Sales Engineer", "sales", "employee"),
    ("Head of RevOps", "operations", "director"),
    ("Data Engineer", "engineering", "employee"),
];
pub const BOT_LINES: &[&str] = &[
    "Hey there! Would you like to speak with a human?",
    "Ok. Would you like to book a meeting with a sales rep instead?",
    "You can grab a time on the calendar here.",
    "Thanks! What's the best email to reach you at?",
    "Great question — let me find someone who can help.",
    "What brings you to our site today?",
];
pub const CONTACT_LINES: &[&str] = &[
    "No thanks!",
    "Yes please!",
    "I'd like to learn more about pricing.",
    "Do you integrate with Salesforce?",
    "Can I get a demo next week?",
    "How does the free trial work?",
    "We have about 200 seats, is there a discount?",
    "Thanks, that helps.",
];
pub const AGENT_LINES: &[&str] = &[
    "Hi! I'm happy to help with that.",
    "Yes, we have a native <b>Salesforce</b> integration.",
    "Let me send you our <a href=\"https://example.com/pricing\">pricing page</a>.",
    "I've booked that demo for you.",
    "Could you tell me a bit more about your team?",
    "Anything else I can help with today?",
];
pub const NOTES: &[&str] = &[
    "Hot lead, follow up tomorrow.",
    "Existing customer, loop in CSM.",
    "Asked about SSO — enterprise plan.",
];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Sep 21, 09:07:46 AM UTC` for an epoch-millisecond time.
pub fn transcript_time(ms: i64) -> String {
    let (_, month, day, h, m, s, _) = drift_types::EpochMillis(ms).civil();
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    format!(
        "{} {day}, {h12:02}:{m:02}:{s:02} {ampm} UTC",
        MONTHS[(month - 1) as usize]
    )
}

/// Removes HTML tags and decodes the few entities the generator and Drift bodies use.
pub fn strip_html(html: &str) -> String {
    drift_types::html::strip_tags(html)
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

/// Who wrote `m`, as Drift's transcripts name them: the contact's email (else `Site
/// Visitor`), `Bot (Agent)`, or the agent's name with ` (Agent)`.
pub fn author_label<'a>(
    m: &Message,
    contact: Option<&Contact>,
    user_of: impl Fn(i64) -> Option<&'a User>,
) -> String {
    match m.author.kind {
        AuthorType::Contact => contact
            .and_then(|c| c.attributes.email())
            .unwrap_or("Site Visitor")
            .to_owned(),
        _ => match user_of(m.author.id) {
            Some(u) if u.bot => "Bot (Agent)".to_owned(),
            Some(u) => format!("{} (Agent)", u.name.as_deref().unwrap_or("Agent")),
            None => "Agent (Agent)".to_owned(),
        },
    }
}

/// Renders a transcript: one line per message visible to the contact, private notes left out.
pub fn transcript<'a>(
    messages: &[Message],
    contact: Option<&Contact>,
    user_of: impl Fn(i64) -> Option<&'a User>,
) -> String {
    let mut out = String::new();
    for m in messages {
        if m.kind != MessageType::Chat {
            continue;
        }
        let label = author_label(m, contact, &user_of);
        let mut text = m.body.as_deref().map(strip_html).unwrap_or_default();
        if let Some(buttons) = &m.buttons {
            let labels: Vec<&str> = buttons.iter().map(|b| b.label.as_str()).collect();
            if !labels.is_empty() {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(&format!("[{}]", labels.join(" | ")));
            }
        }
        out.push_str(&format!(
            "{} {label}: {text}\n",
            transcript_time(m.created_at.get())
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_time_formats_like_drift() {
        // 2021-09-21T16:07:46Z
        assert_eq!(
            transcript_time(1_632_240_466_000),
            "Sep 21, 04:07:46 PM UTC"
        );
        assert_eq!(transcript_time(0), "Jan 1, 12:00:00 AM UTC");
    }

    #[test]
    fn html_is_stripped() {
        assert_eq!(
            strip_html("a <b>bold</b> &amp; <a href=\"x\">link</a>"),
            "a bold & link"
        );
    }
}
