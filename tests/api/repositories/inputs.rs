//! The repositories' input types deserialise from JSON (what an HTTP
//! handler receives), with the enums' stored strings, and deserialising
//! lets no value past the checks a write makes; timestamps serialise as
//! UTC with a `Z` while the stored text keeps its form.

use entity::concept_element::Priority;
use entity::kg_edge::EdgeType;
use entity::utterance::Speaker;
use interview_persistence::repositories::{
    NewConceptElement, NewSession, NewUtterance, NodeRef, Repositories, TurnRecord,
};
use interview_persistence::{Database, Error};
use sea_orm::{ActiveEnum, Iterable};
use serde_json::json;

use crate::fixtures::query_one;
use crate::on_both_backends;
use crate::turn_builders::labeled_turn;

use super::{element, new_session};

on_both_backends!(
    a_deserialised_turn_with_a_confidence_out_of_range_is_refused_before_any_write,
    timestamps_serialise_as_utc_with_a_z_and_are_stored_as_before,
);

fn a_turn_as_json() -> serde_json::Value {
    json!({
        "session_id": "s-1",
        "turn_number": 2,
        "user_utterance": {"text": "Because it is creamy", "discourse_markers": ["because"]},
        "nodes": [
            {"label": "creamy", "node_type": "attribute", "confidence": 0.8},
            {"label": "indulgence", "node_type": "value", "confidence": 0.7, "properties": {"k": 1}}
        ],
        "edges": [
            {"source": {"new": 0}, "target": {"existing": "n-9"}, "edge_type": "means_to", "confidence": 0.6}
        ],
        "scores": {"coverage_score": 0.1, "depth_score": 0.5, "saturation_score": 0.2, "strategy_selected": "deepen"},
        "covered_elements": [["e0", {"new": 1}]],
        "coverage_score": 0.1
    })
}

#[test]
fn a_turn_deserialises_from_json_with_its_optional_parts_defaulted() {
    let turn: TurnRecord = serde_json::from_value(a_turn_as_json()).expect("a turn");
    assert_eq!((turn.session_id.as_str(), turn.turn_number), ("s-1", 2));
    assert_eq!(turn.user_utterance.discourse_markers, ["because"]);
    assert_eq!(turn.nodes[0].properties, json!({}));
    assert_eq!(turn.nodes[1].properties, json!({"k": 1}));
    assert_eq!(turn.edges[0].source, NodeRef::New(0));
    assert_eq!(turn.edges[0].target, NodeRef::Existing("n-9".into()));
    assert_eq!(turn.edges[0].edge_type, EdgeType::MeansTo);
    assert_eq!(turn.covered_elements, [("e0".into(), NodeRef::New(1))]);
    assert_eq!(turn.scores.novelty_score, None);
    assert_eq!(turn.scores.scorer_details, json!({}));
    assert_eq!(turn.system_utterance, None);
}

#[test]
fn a_turn_with_an_unknown_field_or_a_nan_does_not_deserialise() {
    let mut typo = a_turn_as_json();
    typo["coverage"] = json!(0.1);
    let refused = serde_json::from_value::<TurnRecord>(typo).expect_err("an unknown field");
    assert!(refused.to_string().contains("coverage"), "{refused}");
    // JSON has no NaN: serde_json refuses the token outright.
    let text = a_turn_as_json()
        .to_string()
        .replace("\"confidence\":0.8", "\"confidence\":NaN");
    assert!(text.contains("NaN"), "the replacement applied");
    assert!(serde_json::from_str::<TurnRecord>(&text).is_err());
    let unknown_edge_type = a_turn_as_json().to_string().replace("means_to", "MeansTo");
    assert!(serde_json::from_str::<TurnRecord>(&unknown_edge_type).is_err());
}

#[test]
fn every_enum_deserialises_from_the_string_it_is_stored_as() {
    for edge_type in EdgeType::iter() {
        let stored = edge_type.to_value();
        let read: EdgeType = serde_json::from_value(json!(stored)).expect(&stored);
        assert_eq!(read, edge_type);
        assert_eq!(
            serde_json::to_value(edge_type).expect("json"),
            json!(stored)
        );
    }
    for priority in Priority::iter() {
        let stored = priority.to_value();
        let read: Priority = serde_json::from_value(json!(stored)).expect(&stored);
        assert_eq!(read, priority);
    }
    for speaker in Speaker::iter() {
        let stored = speaker.to_value();
        let read: Speaker = serde_json::from_value(json!(stored)).expect(&stored);
        assert_eq!(read, speaker);
    }
}

#[test]
fn sessions_elements_and_utterances_deserialise_with_the_schema_defaults() {
    let session: NewSession = serde_json::from_value(json!({
        "methodology": "means_end_chain", "concept_id": "oat", "concept_name": "Oat milk"
    }))
    .expect("a session");
    assert_eq!((session.id, session.config), (None, json!({})));
    let element: NewConceptElement =
        serde_json::from_value(json!({"element_id": "e0", "label": "Taste"})).expect("an element");
    assert_eq!(
        (element.element_type.as_str(), element.priority),
        ("attribute", Priority::Medium)
    );
    let high: NewConceptElement =
        serde_json::from_value(json!({"element_id": "e1", "label": "Price", "priority": "high"}))
            .expect("an element");
    assert_eq!(high.priority, Priority::High);
    let said: NewUtterance = serde_json::from_value(
        json!({"session_id": "s", "turn_number": 1, "speaker": "user", "text": "hi"}),
    )
    .expect("an utterance");
    assert_eq!(
        (said.speaker, said.discourse_markers.len()),
        (Speaker::User, 0)
    );
}

#[test]
fn a_timestamp_reads_with_or_without_its_z_and_in_the_stored_form() {
    let expected = chrono::NaiveDate::from_ymd_opt(2026, 11, 27)
        .and_then(|d| d.and_hms_micro_opt(12, 21, 26, 182_211))
        .expect("a time");
    for text in [
        "2026-11-27T12:21:26.182211Z",
        "2026-11-27T12:21:26.182211",
        "2026-11-27 12:21:26.182211",
    ] {
        assert_eq!(entity::utc_timestamp::parse(text), Ok(expected), "{text}");
    }
    assert_eq!(
        entity::utc_timestamp::format(&expected),
        "2026-11-27T12:21:26.182211Z"
    );
    assert!(entity::utc_timestamp::parse("27/11/2026").is_err());
}

async fn a_deserialised_turn_with_a_confidence_out_of_range_is_refused_before_any_write(
    db: &Database,
) {
    let repos = Repositories::new(db);
    let (session, _) = repos
        .sessions
        .create_with_elements(new_session(), vec![element("e0", Priority::High)])
        .await
        .expect("a session");
    let mut turn = labeled_turn_json(session.id.as_str());
    turn["nodes"][0]["confidence"] = json!(1.5);
    let turn: TurnRecord = serde_json::from_value(turn).expect("deserialises: not checked yet");
    let refused = repos.turns.record_turn(turn).await;
    assert!(
        matches!(&refused, Err(Error::InvalidInput(message)) if message.contains("1.5")),
        "{refused:?}"
    );
    let context = repos.turns.context(&session.id, 10).await.expect("context");
    assert!(context.recent_utterances.is_empty(), "nothing was written");
}

/// The shared builder's turn, as the JSON a client would send.
fn labeled_turn_json(session_id: &str) -> serde_json::Value {
    let turn = labeled_turn(&session_id.into(), 1, &["t1-a", "t1-b"]);
    json!({
        "session_id": turn.session_id,
        "turn_number": turn.turn_number,
        "user_utterance": {"text": turn.user_utterance.text},
        "nodes": turn.nodes.iter().map(|n| json!({
            "label": n.label, "node_type": n.node_type, "confidence": n.confidence
        })).collect::<Vec<_>>(),
        "edges": [{"source": {"new": 0}, "target": {"new": 1}, "edge_type": "leads_to", "confidence": 0.7}],
        "scores": {"coverage_score": 0.1, "depth_score": 0.5, "saturation_score": 0.1, "strategy_selected": "deepen"},
        "coverage_score": 0.1
    })
}

async fn timestamps_serialise_as_utc_with_a_z_and_are_stored_as_before(db: &Database) {
    let repos = Repositories::new(db);
    let session = repos
        .sessions
        .create(new_session())
        .await
        .expect("a session");
    let json = serde_json::to_value(&session).expect("json");
    let created = json["created_at"].as_str().expect("a string");
    assert_eq!(created, entity::utc_timestamp::format(&session.created_at));
    assert!(
        created.ends_with('Z') && created.len() == "2026-11-27T12:21:26.182211Z".len(),
        "{created}"
    );
    assert_eq!(json["completed_at"], serde_json::Value::Null);
    let back: entity::session::Model = serde_json::from_value(json).expect("reads back");
    assert_eq!(back, session);

    let stored: String = query_one(
        db,
        &format!(
            "SELECT CAST(created_at AS TEXT) FROM sessions WHERE id = '{}'",
            session.id
        ),
    )
    .await;
    assert!(
        !stored.contains('Z') && !stored.contains('T') && stored.contains(' '),
        "the stored form changed: {stored}"
    );
}
