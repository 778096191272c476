//! A generated contact: name, company, place, title, attributes.

use drift_types::{Contact, ContactAttributes, ContactId, EpochMillis};
use serde_json::{Map, Value, json};

use crate::rng::Rng;
use crate::text::*;

/// A day in milliseconds.
pub(super) const DAY_MS: i64 = 86_400_000;

pub(super) fn uuid_like(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

pub(super) fn contact(rng: &mut Rng, id: ContactId, i: u32, anchor: i64) -> Contact {
    let first = *rng.pick(FIRST_NAMES);
    let last = *rng.pick(LAST_NAMES);
    let (company, domain) = *rng.pick(COMPANIES);
    let (city, state, st, tz, lat, lon) = *rng.pick(PLACES);
    let (title, role, seniority) = *rng.pick(TITLES);
    let created = anchor - rng.range(1, 120) * DAY_MS - rng.range(0, DAY_MS);
    let version = rng.range(1, 200);
    let ip = format!(
        "{}.{}.{}.{}",
        rng.range(3, 223),
        rng.range(0, 255),
        rng.range(0, 255),
        rng.range(1, 254)
    );
    let ascii_last: String = last.chars().filter(char::is_ascii_alphabetic).collect();
    let email = format!(
        "{}.{}{}@{domain}",
        first.to_lowercase(),
        ascii_last.to_lowercase(),
        i
    );
    let mut a = Map::new();
    let mut set = |k: &str, v: Value| {
        a.insert(k.to_owned(), v);
    };
    set("email", email.into());
    set("name", format!("{first} {last}").into());
    set("display_name", format!("{first} {last}").into());
    set("first_name", first.into());
    set("last_name", last.into());
    set("city", city.into());
    set("state", state.into());
    set("country", "United States".into());
    set("timezone", tz.into());
    set("timeZone", tz.into());
    set("latitude", lat.into());
    set("longitude", lon.into());
    set("display_location", format!("{city}, {st}, US").into());
    set("employment_name", company.into());
    set("employment_title", title.into());
    set("employment_role", role.into());
    set("employment_seniority", seniority.into());
    set(
        "linkedin_handle",
        format!("in/{}-{}", first.to_lowercase(), ascii_last.to_lowercase()).into(),
    );
    set("ip", ip.clone().into());
    set("original_ip", ip.into());
    set("start_date", created.into());
    set("last_active", (created + rng.range(0, 30) * DAY_MS).into());
    set(
        "last_contacted",
        (created + rng.range(0, 30) * DAY_MS).into(),
    );
    set("_END_USER_VERSION", version.into());
    set("_end_user_version", version.into());
    set("_calculated_version", version.into());
    set("events", json!({}));
    set("socialProfiles", json!({}));
    set("tags", json!([]));
    set("avatar_url", "".into());
    set("avatarUrl", "".into());
    set(
        "original_entrance_page_url",
        format!(
            "https://www.acme-sales.example/{}",
            rng.pick(&["", "pricing", "blog/chatbots"])
        )
        .into(),
    );
    set(
        "recent_entrance_page_title",
        "Acme Sales — Conversational Marketing".into(),
    );
    set(
        "last_context_location",
        json!({"city": city, "region": state, "country": "US", "countryName": "United States"})
            .to_string()
            .into(),
    );
    if rng.chance(0.4) {
        let ext = uuid_like(rng);
        set("externalId", ext.clone().into());
        set("external_id", ext.into());
    }
    if rng.chance(0.35) {
        set(
            "phone",
            format!("+1-{}-555-{:04}", rng.range(201, 989), rng.range(0, 9999)).into(),
        );
    }
    if rng.chance(0.5) {
        set("lead_score", rng.range(0, 100).into());
        set("plan", (*rng.pick(&["free", "team", "enterprise"])).into());
    }
    Contact {
        id,
        created_at: Some(EpochMillis(created)),
        attributes: ContactAttributes(a),
    }
}
