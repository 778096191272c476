//! Property tests over the parsers at the edges: whatever JSON arrives, decoding answers a
//! value or an error and never panics, and the surrogate repair keeps valid JSON as it was.
//! `PROPTEST_CASES=N` runs more cases (docs/BENCHMARKS.md has a long run's figures).

use drift_types::lenient::replace_lone_surrogates;
use drift_types::*;
use proptest::prelude::*;
use serde_json::Value;

/// Keys the decoders look for, so generated objects often reach their inner fields.
const KEYS: &[&str] = &[
    "id",
    "orgId",
    "type",
    "data",
    "token",
    "conversationId",
    "contactId",
    "participants",
    "status",
    "createdAt",
    "updatedAt",
    "author",
    "body",
    "attributes",
    "email",
    "userId",
    "source",
    "slotStart",
    "slotEnd",
    "agentId",
    "messages",
    "pagination",
    "next",
    "more",
    "conversations",
    "endUserId",
    "addedParticipants",
    "bot",
    "name",
    "tags",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        "[0-9]{1,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![prop::sample::select(KEYS).prop_map(str::to_owned), ".{0,6}"],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn event_type() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(webhook::EVENT_TYPES).prop_map(str::to_owned),
        ".{0,16}"
    ]
}

proptest! {
    #[test]
    fn event_decoding_never_panics(t in event_type(), data in json()) {
        let _ = WebhookEvent::from_parts(&t, &data);
    }

    #[test]
    fn envelope_decoding_never_panics(t in event_type(), org in json(), data in json()) {
        let v = serde_json::json!({"type": t, "orgId": org, "data": data});
        if let Ok(env) = serde_json::from_value::<WebhookEnvelope>(v) {
            let _ = env.event();
        }
    }

    #[test]
    fn drift_response_decoding_never_panics(v in json()) {
        let _ = serde_json::from_value::<Conversation>(v.clone());
        let _ = serde_json::from_value::<Message>(v.clone());
        let _ = serde_json::from_value::<Contact>(v.clone());
        let _ = serde_json::from_value::<User>(v.clone());
        let _ = serde_json::from_value::<Account>(v.clone());
        let _ = serde_json::from_value::<Meeting>(v.clone());
        let _ = serde_json::from_value::<Playbook>(v.clone());
        let _ = serde_json::from_value::<ConversationListPage>(v.clone());
        let _ = serde_json::from_value::<MessagesPage>(v);
    }

    #[test]
    fn the_surrogate_repair_never_panics_and_keeps_valid_json_as_it_was(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        v in json(),
    ) {
        let _ = replace_lone_surrogates(&bytes);
        let text = serde_json::to_vec(&v).unwrap();
        let repaired = replace_lone_surrogates(&text);
        prop_assert_eq!(repaired.as_ref(), text.as_slice());
    }

    #[test]
    fn any_surrogate_escape_in_a_string_still_parses_after_repair(
        before in "[a-z ]{0,8}",
        units in prop::collection::vec(0xd800u16..=0xdfff, 1..4),
        after in "[a-z ]{0,8}",
    ) {
        let escapes: String = units.iter().map(|u| format!("\\u{u:04x}")).collect();
        let text = format!(r#"{{"s":"{before}{escapes}{after}"}}"#);
        let v: Value = serde_json::from_slice(&replace_lone_surrogates(text.as_bytes()))
            .expect("repaired JSON parses");
        let s = v["s"].as_str().unwrap();
        prop_assert!(s.starts_with(&before) && s.ends_with(&after), "{s:?}");
    }

    #[test]
    fn retry_after_never_panics(s in ".{0,40}", f in any::<f64>()) {
        let now = std::time::SystemTime::now();
        let _ = retry::retry_after(&s, now);
        let _ = retry::retry_after(&f.to_string(), now);
        let _ = retry::retry_after(&format!("{f:e}"), now);
    }
}
