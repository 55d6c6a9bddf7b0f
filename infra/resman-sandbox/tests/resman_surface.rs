//! The ResMan partner surface over HTTP: envelopes, look-ups, MITS posts and searches, the calendar.

mod common;

use chrono::{Duration, DurationRound, Utc};
use common::*;
use serde_json::Value;

#[tokio::test]
async fn get_employees_answers_json_when_accept_asks_for_it_and_xml_otherwise() {
    let sandbox = Sandbox::start().await;

    let json = sandbox
        .call_json("Leasing", "GetEmployees", &[("PropertyID", MAPLE)])
        .await;
    assert_eq!(json["MethodName"], "GetEmployees");
    assert_eq!(json["Status"], "Success");
    assert_eq!(json["ErrorDescription"], Value::Null);
    assert_eq!(json["AccountID"], 400);
    assert_eq!(json["PropertyID"], MAPLE);
    let employees = json["Employees"].as_array().expect("Employees[]");
    assert_eq!(employees.len(), 4);
    assert_eq!(employees[0]["ID"], ALEX);
    assert_eq!(employees[0]["FirstName"], "Alex");
    assert_eq!(employees[0]["LastName"], "Rivera");
    assert_eq!(employees[0]["Email"], "alex.rivera@maplegrove.example");
    assert_eq!(employees[3]["IsLeasing"], false);

    let response = sandbox
        .call("Leasing", "GetEmployees", &[("PropertyID", MAPLE)], false)
        .await;
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    assert!(content_type.contains("xml"), "{content_type}");
    let xml = parse_resman(&response.text().await.expect("body"));
    xml.assert_success();
    assert_eq!(xml.method_name, "GetEmployees");
    assert_eq!(xml.account_id.as_deref(), Some("400"));
    let employees = xml.response.employees.expect("Employees element");
    assert_eq!(employees.items.len(), 4);
    assert_eq!(employees.items[1].id, JORDAN);
    assert_eq!(employees.items[1].first_name, "Jordan");
    assert!(employees.items[1].is_leasing);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn get_properties_lists_every_seeded_property_with_its_time_zone() {
    let sandbox = Sandbox::start().await;
    let json = sandbox.call_json("Account", "GetProperties", &[]).await;
    assert_eq!(json["Status"], "Success");
    let properties = json["Properties"].as_array().expect("Properties[]");
    assert_eq!(properties.len(), 2);
    assert_eq!(properties[0]["PropertyID"], MAPLE);
    assert_eq!(properties[0]["Name"], "Maple Grove Apartments");
    assert_eq!(properties[0]["StreetAddress"], "1200 Riverside Dr");
    assert_eq!(properties[0]["City"], "Austin");
    assert_eq!(properties[0]["State"], "TX");
    assert_eq!(properties[0]["Zip"], "78741");
    assert_eq!(properties[0]["TimeZone"], "America/Chicago");
    assert_eq!(properties[1]["TimeZone"], "America/Phoenix");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn get_prospect_sources_lists_the_property_sources() {
    let sandbox = Sandbox::start().await;
    let json = sandbox
        .call_json("Leasing", "GetProspectSources", &[("PropertyID", SAGUARO)])
        .await;
    assert_eq!(
        json["ProspectSources"],
        serde_json::json!([{"ID": SAGUARO_CHATBOT, "Name": "DomIQ Chatbot"}])
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_are_a_status_error_in_an_http_200() {
    let sandbox = Sandbox::start().await;
    let good = [
        ("IntegrationPartnerID", PARTNER),
        ("ApiKey", API_KEY),
        ("AccountID", ACCOUNT),
    ];
    for (field, wrong) in [
        ("IntegrationPartnerID", "someone-else"),
        ("ApiKey", "wrong-key"),
        ("AccountID", "401"),
    ] {
        let mut form: Vec<(&str, &str)> = good
            .iter()
            .map(|&(k, v)| if k == field { (k, wrong) } else { (k, v) })
            .collect();
        form.push(("PropertyID", MAPLE));
        let response = sandbox.call_raw("Leasing", "GetEmployees", &form, true).await;
        assert_eq!(response.status(), 200);
        let json: Value = response.json().await.expect("json");
        assert_eq!(json["Status"], "Error", "{field}");
        assert_eq!(
            json["ErrorDescription"],
            "Invalid IntegrationPartnerID, ApiKey or AccountID"
        );
        assert!(json.get("Employees").is_none());
    }
    let missing = sandbox
        .call_raw("Leasing", "GetEmployees", &[("PropertyID", MAPLE)], false)
        .await;
    let xml = parse_resman(&missing.text().await.expect("body"));
    assert_eq!(xml.status, "Error");
    assert_eq!(
        xml.error_description.as_deref(),
        Some("Invalid IntegrationPartnerID, ApiKey or AccountID")
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn credentials_are_also_accepted_in_the_query_string() {
    let sandbox = Sandbox::start().await;
    let response = sandbox
        .client
        .post(sandbox.url(&format!(
            "/Leasing/GetEmployees?IntegrationPartnerID={PARTNER}&ApiKey={API_KEY}&AccountID={ACCOUNT}&PropertyID={MAPLE}"
        )))
        .header("Accept", "application/json")
        .send()
        .await
        .expect("sent");
    let json: Value = response.json().await.expect("json");
    assert_eq!(json["Status"], "Success");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_unknown_property_is_property_not_found() {
    let sandbox = Sandbox::start().await;
    let unknown = "00000000-0000-4000-8000-000000000000";
    for property in [unknown, "not-a-guid"] {
        let json = sandbox
            .call_json("Leasing", "GetEmployees", &[("PropertyID", property)])
            .await;
        assert_eq!(json["Status"], "Error");
        assert_eq!(json["ErrorDescription"], "Property not found");
    }
    let search = sandbox.search(unknown, &[("Email", "a@example.com")]).await;
    assert_eq!(search.status, "Error");
    assert_eq!(search.error_description.as_deref(), Some("Property not found"));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_unknown_method_is_a_404_with_the_error_envelope() {
    let sandbox = Sandbox::start().await;
    let response = sandbox.call("Leasing", "GetUnicorns", &[], true).await;
    assert_eq!(response.status(), 404);
    let json: Value = response.json().await.expect("json");
    assert_eq!(json["Status"], "Error");
    assert_eq!(json["MethodName"], "GetUnicorns");
    let response = sandbox.call("Nowhere", "GetEmployees", &[], false).await;
    assert_eq!(response.status(), 404);
    assert_eq!(parse_resman(&response.text().await.expect("body")).status, "Error");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn mits_methods_answer_xml_even_when_json_is_asked_for() {
    let sandbox = Sandbox::start().await;
    let response = sandbox
        .call(
            "MITS",
            "SearchProspects",
            &[("PropertyID", MAPLE), ("Email", "nobody@example.com")],
            true,
        )
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    let xml = parse_resman(&text);
    xml.assert_success();
    assert!(xml.prospects().is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_new_guest_card_creates_a_prospect_that_search_by_email_finds() {
    let sandbox = Sandbox::start().await;
    let echo = sandbox
        .book_tour("ana@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await;
    echo.assert_success();
    let created = echo.prospect();
    let prospect_id = created.prospect_id();
    let person_id = created.id("PersonID");
    assert_ne!(prospect_id, person_id);
    let event_id = created.event().event_id.value.clone();
    assert!(uuid::Uuid::parse_str(&event_id).is_ok(), "{event_id}");

    let found = sandbox.search(MAPLE, &[("Email", "ANA@example.com")]).await;
    found.assert_success();
    let prospect = found.prospect();
    assert_eq!(prospect.prospect_id(), prospect_id);
    assert_eq!(prospect.customers.items[0].email.as_deref(), Some("ana@example.com"));
    let event = prospect.event();
    assert_eq!(event.event_id.value, event_id);
    assert_eq!(event.event_type, "Appointment");
    assert_eq!(event.event_date, "2026-12-01T16:00:00");
    assert_eq!(event.agent.as_ref().map(|a| a.agent_id.value.as_str()), Some(ALEX));
    assert_eq!(event.event_reasons.as_deref(), Some("Scheduled"));
    assert_eq!(
        event.comments.as_deref(),
        Some("In-Person Tour, 45 min. Notes & requests [tour-ref:abc]")
    );

    let other_property = sandbox.search(SAGUARO, &[("Email", "ana@example.com")]).await;
    assert!(other_property.prospects().is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn prospects_are_found_by_id_by_phone_digits_and_by_name() {
    let sandbox = Sandbox::start().await;
    let echo = sandbox
        .book_tour("ana@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await;
    let prospect_id = echo.prospect().prospect_id();
    for criteria in [
        vec![("ProspectID", prospect_id.as_str())],
        vec![("Phone", "+1 (512) 555-0100")],
        vec![("FirstName", "ana"), ("LastName", "LOPEZ")],
    ] {
        let found = sandbox.search(MAPLE, &criteria).await;
        assert_eq!(found.prospect().prospect_id(), prospect_id, "{criteria:?}");
    }
    let not_found = sandbox.search(MAPLE, &[("Phone", "5125550199")]).await;
    assert!(not_found.prospects().is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_search_without_a_criterion_is_a_status_error() {
    let sandbox = Sandbox::start().await;
    let answer = sandbox.search(MAPLE, &[]).await;
    assert_eq!(answer.status, "Error");
    let two = sandbox
        .search(MAPLE, &[("Email", "a@example.com"), ("Phone", "1")])
        .await;
    assert_eq!(two.status, "Error");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn posting_the_same_guest_card_twice_makes_two_prospects() {
    let sandbox = Sandbox::start().await;
    let first = sandbox
        .book_tour("twice@example.com", ALEX, "2026-12-01T16:00:00", 30)
        .await;
    let second = sandbox
        .book_tour("twice@example.com", JORDAN, "2026-12-01T16:00:00", 30)
        .await;
    first.assert_success();
    second.assert_success();
    assert_ne!(first.prospect().prospect_id(), second.prospect().prospect_id());
    let found = sandbox.search(MAPLE, &[("Email", "twice@example.com")]).await;
    assert_eq!(found.prospects().len(), 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_overlapping_appointment_for_the_same_agent_is_refused_and_not_written() {
    let sandbox = Sandbox::start().await;
    sandbox
        .book_tour("first@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await
        .assert_success();
    let clash = sandbox
        .book_tour("second@example.com", ALEX, "2026-12-01T16:30:00", 30)
        .await;
    assert_eq!(clash.status, "Error");
    assert_eq!(
        clash.error_description.as_deref(),
        Some("Agent is not available at that time")
    );
    assert_eq!(sandbox.appointments().await.len(), 1);
    let nothing = sandbox.search(MAPLE, &[("Email", "second@example.com")]).await;
    assert!(nothing.prospects().is_empty(), "a refused post writes nothing");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_same_time_is_free_for_a_different_agent() {
    let sandbox = Sandbox::start().await;
    sandbox
        .book_tour("first@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await
        .assert_success();
    sandbox
        .book_tour("second@example.com", JORDAN, "2026-12-01T16:00:00", 45)
        .await
        .assert_success();
    assert_eq!(sandbox.appointments().await.len(), 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_appointment_no_longer_blocks_its_agent() {
    let sandbox = Sandbox::start().await;
    let echo = sandbox
        .book_tour("first@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await;
    let prospect = echo.prospect();
    let cancel = event_update(
        &prospect.prospect_id(),
        &prospect.event().event_id.value,
        None,
        Some("Cancelled"),
    );
    let cancelled = sandbox.post_lead(MAPLE, &cancel).await;
    cancelled.assert_success();
    assert_eq!(cancelled.prospect().event().event_reasons.as_deref(), Some("Cancelled"));
    sandbox
        .book_tour("second@example.com", ALEX, "2026-12-01T16:00:00", 45)
        .await
        .assert_success();
    sandbox.shutdown().await;
}

#[tokio::test]
async fn posting_an_event_id_with_a_new_date_moves_that_appointment() {
    let sandbox = Sandbox::start().await;
    let echo = sandbox
        .book_tour("mover@example.com", ALEX, "2026-12-01T16:00:00", 60)
        .await;
    sandbox
        .book_tour("blocker@example.com", ALEX, "2026-12-01T18:00:00", 30)
        .await
        .assert_success();
    let prospect_id = echo.prospect().prospect_id();
    let event_id = echo.prospect().event().event_id.value.clone();

    let onto_its_own_slot = event_update(&prospect_id, &event_id, Some("2026-12-01T16:30:00"), None);
    let moved = sandbox.post_lead(MAPLE, &onto_its_own_slot).await;
    moved.assert_success();
    assert_eq!(moved.prospect().event().event_id.value, event_id);
    assert_eq!(moved.prospect().event().event_date, "2026-12-01T16:30:00");

    let onto_the_blocker = event_update(&prospect_id, &event_id, Some("2026-12-01T17:45:00"), None);
    let refused = sandbox.post_lead(MAPLE, &onto_the_blocker).await;
    assert_eq!(
        refused.error_description.as_deref(),
        Some("Agent is not available at that time")
    );
    let appointments = sandbox.appointments().await;
    assert_eq!(appointments.len(), 2, "a move never duplicates");
    assert_eq!(appointments[0]["scheduled_at"], "2026-12-01T16:30:00Z");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn business_rules_of_a_post_answer_their_error_descriptions() {
    let sandbox = Sandbox::start().await;
    let card = tour_card("rules@example.com", ALEX, "2026-12-01T16:00:00", 30);
    let cases = [
        (
            card.replace(CHATBOT, "00000000-0000-4000-8000-000000000000"),
            "Transaction Source could not be found",
        ),
        (card.replace(ALEX, RILEY), "Agent not found"),
        (
            event_update("00000000-0000-4000-8000-000000000000", "x", None, None),
            "Prospect not found",
        ),
    ];
    for (xml, description) in cases {
        let answer = sandbox.post_lead(MAPLE, &xml).await;
        assert_eq!(answer.status, "Error");
        assert_eq!(answer.error_description.as_deref(), Some(description));
    }
    let with_offset = sandbox
        .post_lead(MAPLE, &card.replace("2026-12-01T16:00:00", "2026-12-01T10:00:00-06:00"))
        .await;
    assert_eq!(with_offset.status, "Error");
    assert!(sandbox.appointments().await.is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn malformed_xml_is_a_status_error_invalid_xml() {
    let sandbox = Sandbox::start().await;
    let answer = sandbox
        .post_lead(MAPLE, "<LeadManagement><Prospects></LeadManagement>")
        .await;
    assert_eq!(answer.status, "Error");
    let description = answer.error_description.unwrap_or_default();
    assert!(description.starts_with("Invalid Xml: "), "{description}");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_modified_window_over_seven_days_answers_502_buffer_overflow() {
    let sandbox = Sandbox::start().await;
    let response = sandbox
        .call(
            "MITS",
            "SearchProspects",
            &[
                ("PropertyID", MAPLE),
                ("ModifiedStartDateTime", "2026-11-01T00:00:00"),
                ("ModifiedEndDateTime", "2026-11-08T00:00:01"),
            ],
            false,
        )
        .await;
    assert_eq!(response.status(), 502);
    assert!(response.text().await.expect("body").contains("buffer overflow"));

    let seven_days = sandbox
        .search(
            MAPLE,
            &[
                ("ModifiedStartDateTime", "2026-11-01T00:00:00"),
                ("ModifiedEndDateTime", "2026-11-08T00:00:00"),
            ],
        )
        .await;
    seven_days.assert_success();
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_modified_window_finds_a_prospect_changed_inside_it_and_not_outside() {
    let sandbox = Sandbox::start().await;
    let before = Utc::now().duration_trunc(Duration::seconds(1)).expect("truncates");
    let echo = sandbox
        .book_tour("window@example.com", ALEX, "2026-12-01T16:00:00", 30)
        .await;
    let after = Utc::now().duration_trunc(Duration::seconds(1)).expect("truncates") + Duration::seconds(1);
    let window = |start, end| {
        [
            ("ModifiedStartDateTime", resman_time(start)),
            ("ModifiedEndDateTime", resman_time(end)),
        ]
    };
    let search = |start, end| {
        let fields = window(start, end);
        let sandbox = &sandbox;
        async move {
            let criteria: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            sandbox.search(MAPLE, &criteria).await
        }
    };
    let inside = search(before, after).await;
    assert_eq!(inside.prospect().prospect_id(), echo.prospect().prospect_id());
    assert_eq!(inside.prospect().events.items.len(), 1);
    let earlier = search(before - Duration::hours(1), before).await;
    assert!(earlier.prospects().is_empty());
    let later = search(after, after + Duration::hours(1)).await;
    assert!(later.prospects().is_empty());
    sandbox.shutdown().await;
}
