//! Every sample payload of the seeds and of drift-api.md parses.

mod props;

use drift_types::*;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn the_seed_conversation_push_parses_with_its_nested_data_and_token_redacted() {
    let env: WebhookEnvelope =
        serde_json::from_str(&fixture("seed_conversation_push.json")).unwrap();
    assert_eq!(env.org_id, Some(OrgId(5_000_883)));
    assert_eq!(format!("{:?}", env.token), "Some([redacted])");
    let WebhookEvent::ConversationPush(p) = env.event().unwrap() else {
        panic!("wrong variant")
    };
    assert_eq!(p.source.as_deref(), Some("conversation_manual_push"));
    assert_eq!(p.data.conversation_id, ConversationId(3_275_727_977));
    assert_eq!(p.data.pushed_at, Some(EpochMillis(1_632_349_419_751)));
}

#[test]
fn the_seed_conversation_contact_and_user_parse() {
    let c: Data<Conversation> = serde_json::from_str(&fixture("seed_conversation.json")).unwrap();
    assert_eq!(c.data.status, ConversationStatus::Closed);
    assert_eq!(c.data.related_playbook_id, Some(PlaybookId(2_310_900)));
    let ct: Data<Contact> = serde_json::from_str(&fixture("seed_contact.json")).unwrap();
    assert_eq!(ct.data.id.get(), 11_751_623_441_268_736);
    assert_eq!(ct.data.attributes.email(), Some("gregg@example.com"));
    assert_eq!(
        ct.data.attributes.external_id(),
        Some("5239c583-cc8e-4617-353-79681622839e")
    );
    assert_eq!(ct.data.attributes.0.len(), 41, "every attribute is kept");
    let u: Data<User> = serde_json::from_str(&fixture("seed_user.json")).unwrap();
    assert_eq!(u.data.availability.as_deref(), Some("OFFLINE"));
    assert!(!u.data.bot);
}

#[test]
fn messages_accounts_playbooks_meetings_and_token_info_parse() {
    let m: Message = serde_json::from_str(&fixture("message.json")).unwrap();
    assert_eq!(m.author.kind, AuthorType::Contact);
    let b = &m.buttons.as_ref().unwrap()[0];
    assert_eq!(
        (b.kind.clone(), b.reaction.as_ref().unwrap().kind.as_str()),
        (ButtonType::Reply, "replace")
    );
    let ctx = m.context.as_ref().unwrap();
    assert_eq!(
        ctx.extra.get("screen").and_then(|v| v.as_str()),
        Some("1920x1080"),
        "unknown context keys are kept"
    );
    let a: Data<Account> = serde_json::from_str(&fixture("account.json")).unwrap();
    assert_eq!(a.data.custom_properties[0].kind, "NUMBER");
    let p: Vec<Playbook> = serde_json::from_str(&fixture("playbooks.json")).unwrap();
    assert_eq!(p[0].interaction_id, None);
    assert_eq!(p[0].goals.len(), 1);
    let mt: Meeting = serde_json::from_str(&fixture("meeting.json")).unwrap();
    assert_eq!(mt.scheduler_id, Some(ContactId(11_409_060_726)));
    let ti: TokenInfo = serde_json::from_str(&fixture("token_info.json")).unwrap();
    assert_eq!(ti.org_id(), Some(OrgId(5_000_883)));
    assert_eq!(
        ti.scopes().collect::<Vec<_>>(),
        ["conversation_read", "user_read"]
    );
}

#[test]
fn both_error_shapes_and_both_token_casings_parse() {
    let a: ApiErrorBody =
        serde_json::from_str(r#"{"error":{"type":"authentication_error","message":"expired"}}"#)
            .unwrap();
    assert_eq!((a.kind(), a.message()), ("authentication_error", "expired"));
    let b: ApiErrorBody = serde_json::from_str(
        r#"{"errors":[{"type":"validation_error","message":"bad","param":"limit"}]}"#,
    )
    .unwrap();
    assert_eq!(b.first().unwrap().param.as_deref(), Some("limit"));
    let snake: TokenResponse = serde_json::from_str(r#"{"access_token":"a","refresh_token":"r","token_type":"bearer","expires_in":7200,"orgId":5}"#).unwrap();
    let camel: TokenResponse =
        serde_json::from_str(r#"{"accessToken":"a","refreshToken":"r","orgId":5}"#).unwrap();
    assert_eq!(snake.access_token, camel.access_token);
    assert_eq!(snake.refresh_token, camel.refresh_token);
    assert_eq!(snake.expires_in, Some(7200));
    assert!(
        !format!("{snake:?}").contains("\"a\""),
        "tokens are redacted in Debug"
    );
}

#[test]
fn every_documented_event_type_parses_from_its_documented_shape() {
    let samples = [
        (
            "contact_identified",
            r#"{"id":1,"createdAt":2,"attributes":{"email":"a@b.c"}}"#,
        ),
        (
            "new_message",
            r#"{"id":1,"conversationId":2,"createdAt":3,"author":{"type":"user","id":4,"bot":true},"type":"chat"}"#,
        ),
        (
            "new_command_message",
            r#"{"id":1,"conversationId":2,"createdAt":3,"author":{"type":"user","id":4},"body":"/define x"}"#,
        ),
        (
            "new_conversation",
            r#"{"id":2,"contactId":5,"createdAt":3,"status":"open"}"#,
        ),
        (
            "conversation_status_updated",
            r#"{"conversationId":2,"status":"closed","changedAt":3,"orgId":1}"#,
        ),
        (
            "conversation_participant_added",
            r#"{"conversationId":2,"addedParticipants":[7,8],"changedAt":3}"#,
        ),
        (
            "conversation_participant_removed",
            r#"{"conversationId":2,"removedParticipants":[7],"changedAt":3}"#,
        ),
        (
            "conversation_push",
            r#"{"source":"conversation_inactive","data":{"conversationId":2,"pushedAt":3}}"#,
        ),
        (
            "conversation_manual_push",
            r#"{"conversationId":2,"userId":7,"pushedAt":3}"#,
        ),
        (
            "conversation_inactive",
            r#"{"conversationId":2,"lastUpdated":3}"#,
        ),
        (
            "button_action",
            r#"{"conversationId":2,"author":{"type":"user","id":7},"sourceMessageId":9,"button":{"label":"Go","value":"go","type":"action"}}"#,
        ),
        (
            "button_clicked",
            r#"{"id":1,"conversationId":2,"createdAt":3,"author":{"type":"contact","id":4}}"#,
        ),
        (
            "playbook_goal_met",
            r#"{"conversationId":2,"playbookId":3,"contactId":4,"goalId":"u-u-i-d","goalName":"Email","playbookName":"Welcome","contactEmail":"a@b.c"}"#,
        ),
        (
            "phone_captured",
            r#"{"conversationId":2,"authorId":4,"authorType":"contact","phoneNumber":"+1"}"#,
        ),
        (
            "contact_updated",
            r#"{"endUserId":4,"timestamp":5,"orgId":1,"diff":[{"name":"attributes.email","previous":null,"updated":"a@b.c"}]}"#,
        ),
        (
            "user_availability_updated",
            r#"{"userId":7,"updatedAt":5,"availability":"ONLINE"}"#,
        ),
        (
            "user_unsubscribed",
            r#"{"id":4,"attributes":{"email":"a@b.c"}}"#,
        ),
        (
            "new_meeting",
            r#"{"agentId":7,"orgId":1,"schedulerId":4,"slug":"m","slotStart":1,"slotEnd":2,"conversationId":2}"#,
        ),
        (
            "meeting_updated",
            r#"{"agentId":7,"slug":"m","eventType":"canceled","conversationId":2}"#,
        ),
        ("chat_to_call", r#"{"anything":1}"#),
        (
            "gdpr_delete_requested",
            r#"{"email":"a@b.c","requestedAt":5}"#,
        ),
        (
            "app_disconnected",
            r#"{"orgId":1,"appId":9,"disconnectedAt":5}"#,
        ),
    ];
    assert_eq!(samples.len(), webhook::EVENT_TYPES.len());
    for (t, data) in samples {
        let env: WebhookEnvelope = serde_json::from_str(&format!(
            r#"{{"type":"{t}","orgId":1,"token":"x","data":{data}}}"#
        ))
        .unwrap();
        let ev = env.event().unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(ev.event_type(), t);
        assert!(!matches!(ev, WebhookEvent::Unknown { .. }), "{t}");
        // Round trip: the typed data serialises back to something that parses the same.
        let again = WebhookEvent::from_parts(t, &ev.data_json()).unwrap();
        assert_eq!(again, ev, "{t}");
    }
    let m = WebhookEnvelope {
        event_type: "meeting_updated".into(),
        token: None,
        org_id: None,
        data: serde_json::json!({"eventType":"canceled"}),
    };
    assert!(matches!(m.event(), Ok(WebhookEvent::MeetingUpdated(_))));
}

#[test]
fn unknown_event_types_are_kept_verbatim_and_bad_data_is_a_typed_error() {
    let env: WebhookEnvelope =
        serde_json::from_str(r#"{"type":"brand_new_event","orgId":1,"data":{"x":[1,2]}}"#).unwrap();
    let WebhookEvent::Unknown { event_type, data } = env.event().unwrap() else {
        panic!()
    };
    assert_eq!(
        (event_type.as_str(), data["x"][1].as_i64()),
        ("brand_new_event", Some(2))
    );
    let bad: WebhookEnvelope =
        serde_json::from_str(r#"{"type":"conversation_push","data":{"source":"x"}}"#).unwrap();
    let err = bad.event().unwrap_err();
    assert!(err.to_string().contains("conversation_push"), "{err}");
    let status: ConversationStatus = serde_json::from_str("\"archived\"").unwrap();
    assert_eq!(status, ConversationStatus::Other("archived".into()));
}
