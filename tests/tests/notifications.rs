//! The messages a tour owes, sent through SES v2 (moto) and read back from moto's store: recipients, subject, the
//! local time with its zone named, both parts, and an invite that a real parser reads back with the right instant,
//! `UID`, `SEQUENCE` and `METHOD`.

use integration_tests::DEMO_PROPERTY;
use integration_tests::stack::*;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::json;
use tour_core::domain::BookingId;
use tour_core::domain::notify::{DeliveryStatus, MessageKind, when_in_words};
use tour_core::ports::{MessageStore, SyncQueue};

struct Received {
    to: Vec<String>,
    subject: String,
    text: String,
    html: String,
    invite: Option<(String, icalendar::Calendar)>,
}

fn read(raw: &[u8]) -> Received {
    let message = MessageParser::default().parse(raw).expect("a MIME message");
    let to = message
        .to()
        .map(|a| a.iter().filter_map(|a| a.address().map(str::to_owned)).collect())
        .unwrap_or_default();
    let invite = message.attachments().find_map(|part| {
        let kind = part.content_type()?;
        (kind.ctype() == "text" && kind.subtype() == Some("calendar")).then(|| {
            let method = kind.attribute("method").unwrap_or_default().to_owned();
            let ics = String::from_utf8(part.contents().to_vec()).unwrap();
            (method, ics.parse::<icalendar::Calendar>().expect("the invite parses"))
        })
    });
    Received {
        to,
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message.body_text(0).unwrap_or_default().into_owned(),
        html: message.body_html(0).unwrap_or_default().into_owned(),
        invite,
    }
}

fn event(calendar: &icalendar::Calendar) -> &icalendar::Event {
    calendar.events().next().expect("one event")
}

#[tokio::test]
async fn a_booking_sends_its_confirmation_with_an_invite_and_the_staff_alert_each_once_and_a_cancellation_withdraws_it()
{
    use icalendar::Component;
    let stack = Stack::start().await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    let id = response(&booked)["appointment_id"].as_str().unwrap().to_owned();
    let tour = stack.tour(&id).await;
    assert_eq!(
        stack.deliver_notifications().await,
        2,
        "the confirmation and the staff alert"
    );

    let emails: Vec<Received> = stack.sent_emails().await.iter().map(|r| read(r)).collect();
    assert_eq!(emails.len(), 2);
    let when = when_in_words(tour.start, stack.property.time_zone);
    assert!(when.ends_with("Central Time"), "{when}");
    let confirmation = emails
        .iter()
        .find(|e| e.to == ["prospect1@example.com"])
        .expect("to the prospect");
    assert!(confirmation.subject.contains(&when), "{}", confirmation.subject);
    assert!(confirmation.text.contains(&when) && confirmation.html.contains(&when));
    assert!(confirmation.text.contains("Hi Prospect") && confirmation.html.contains("<p>Hi Prospect"));
    let agent = stack.property.agent(tour.holder.agent().unwrap()).unwrap();
    assert!(confirmation.text.contains(&agent.name), "the guide's name");
    assert!(
        confirmation.text.contains("(512) 555-0142"),
        "the leasing office's contact"
    );
    let (method, calendar) = confirmation.invite.as_ref().expect("an invite");
    assert_eq!(method, "REQUEST");
    assert_eq!(calendar.property_value("METHOD"), Some("REQUEST"));
    let first = event(calendar);
    assert_eq!(first.get_uid(), Some(format!("{id}@tour-booking").as_str()));
    assert_eq!(first.get_sequence(), Some(1));
    assert_eq!(
        first.get_start(),
        Some(icalendar::DatePerhapsTime::DateTime(icalendar::CalendarDateTime::Utc(
            tour.start
        ))),
        "the right instant"
    );
    let alert = emails
        .iter()
        .find(|e| e.to != ["prospect1@example.com"])
        .expect("a staff alert");
    assert!(alert.to.iter().any(|t| t == "leasing@maplegrove.example"));
    assert!(
        alert.to.iter().any(|t| agent.email.as_deref() == Some(t.as_str())),
        "and the agent"
    );
    assert!(
        alert.subject.starts_with("New tour: Prospect Number1"),
        "{}",
        alert.subject
    );
    assert!(alert.text.contains("2 bedrooms") && alert.text.contains("ground floor"));

    // Delivered again (a redelivery, a sweep): nothing is sent twice.
    let confirmation_ref = tour_core::domain::notify::MessageRef {
        booking_id: BookingId::parse(&id).unwrap(),
        kind: MessageKind::Confirmation,
        version: 1,
    };
    stack.queue.enqueue_messages(&[confirmation_ref]).await.unwrap();
    stack.deliver_notifications().await;
    assert_eq!(stack.sent_emails().await.len(), 2, "no second confirmation");
    let (_, deliveries) = stack.store.tour_with_messages(&tour.booking_id).await.unwrap().unwrap();
    let sent = deliveries
        .iter()
        .find(|d| d.message == MessageKind::Confirmation)
        .unwrap();
    assert_eq!((sent.status, sent.attempts), (DeliveryStatus::Sent, 1));
    assert!(sent.provider_message_id.is_some() && sent.sent_at.is_some());
    // The tour read shows it: staff and the chatbot can see the confirmation went out.
    let view = stack.view(&id).await;
    let shown: Vec<(&str, &str)> = view["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["message"].as_str().unwrap(), n["status"].as_str().unwrap()))
        .collect();
    assert_eq!(shown, [("confirmation", "sent"), ("staff_new", "sent")]);

    // The chatbot cancels: the invite is withdrawn (same UID, higher SEQUENCE), and staff hear of it.
    stack.update(&id, json!({"status": "cancelled"}), None).await.unwrap();
    assert_eq!(stack.deliver_notifications().await, 2);
    let emails: Vec<Received> = stack.sent_emails().await.iter().map(|r| read(r)).collect();
    let cancellation = emails
        .iter()
        .find(|e| e.to == ["prospect1@example.com"] && e.subject.contains("cancelled"))
        .expect("a cancellation");
    let (method, calendar) = cancellation.invite.as_ref().unwrap();
    assert_eq!(
        (method.as_str(), calendar.property_value("METHOD")),
        ("CANCEL", Some("CANCEL"))
    );
    assert_eq!(event(calendar).get_uid(), first.get_uid());
    assert_eq!(event(calendar).get_sequence(), Some(2));
    assert!(
        emails
            .iter()
            .any(|e| e.subject.starts_with("Tour cancelled: Prospect Number1"))
    );
}

#[tokio::test]
async fn reminders_leave_once_when_due_follow_a_moved_tour_and_never_leave_for_a_cancelled_one() {
    use chrono::Duration;
    use tour_core::app::notify::queue_due_reminders;
    let stack = Stack::start().await;
    let book = async |n: usize, time: &str| {
        let booked = stack.book(&command(&stack.property, n, time), None).await.unwrap();
        stack.tour(response(&booked)["appointment_id"].as_str().unwrap()).await
    };
    let (kept, cancelled, moved) = (book(1, "10:00").await, book(2, "11:00").await, book(3, "14:00").await);
    stack
        .update(cancelled.booking_id.as_str(), json!({"status": "cancelled"}), None)
        .await
        .unwrap();
    let date = bookable_date(&stack.property);
    stack
        .update(
            moved.booking_id.as_str(),
            json!({"rescheduled_datetime": format!("{date}T15:00")}),
            None,
        )
        .await
        .unwrap();
    stack.deliver_notifications().await;
    let before = stack.sent_emails().await.len();
    let two_hours_before = |start: chrono::DateTime<chrono::Utc>| start - Duration::hours(2) + Duration::minutes(1);
    let tick = async |at| {
        queue_due_reminders(&stack.scheduler(), at, &integration_tests::invocation(60))
            .await
            .unwrap()
    };
    // A tick with no time left takes nothing: the reminder stays due for the next.
    let spent = tour_core::app::budget::TimeBudget::lasting(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(2),
    );
    let late = queue_due_reminders(&stack.scheduler(), two_hours_before(kept.start), &spent).await;
    assert_eq!(late.unwrap(), 0, "out of time: nothing taken");

    assert_eq!(
        tick(two_hours_before(kept.start)).await,
        1,
        "the 2-hour reminder of the 10:00 tour"
    );
    assert_eq!(tick(two_hours_before(kept.start)).await, 0, "once, however many ticks");
    assert_eq!(
        tick(two_hours_before(cancelled.start)).await,
        0,
        "none for the cancelled tour"
    );
    assert_eq!(
        tick(two_hours_before(moved.start)).await,
        0,
        "none at the moved tour's old time"
    );
    let new_start = stack.tour(moved.booking_id.as_str()).await.start;
    assert_eq!(new_start, moved.start + Duration::hours(1));
    assert_eq!(
        tick(two_hours_before(new_start)).await,
        1,
        "the moved tour's reminder follows it"
    );

    assert_eq!(stack.deliver_notifications().await, 2);
    let emails: Vec<Received> = stack.sent_emails().await[before..].iter().map(|r| read(r)).collect();
    let to: Vec<&str> = emails.iter().map(|e| e.to[0].as_str()).collect();
    assert_eq!(to, ["prospect1@example.com", "prospect3@example.com"]);
    let moved_when = when_in_words(new_start, stack.property.time_zone);
    assert!(
        emails[1].subject.starts_with("See you soon") && emails[1].subject.contains(&moved_when),
        "{}",
        emails[1].subject
    );
}

#[tokio::test]
async fn messages_whose_queue_message_was_lost_are_queued_again_once_by_the_sweep() {
    use tour_core::app::notify::{MESSAGES_REQUEUE_AFTER, requeue_unsent_messages};
    let stack = Stack::start().await;
    stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    // The queue lost both messages (as if the send had failed after the booking was stored).
    stack
        .sqs
        .purge_queue()
        .queue_url(stack.aws.var("NOTIFY_QUEUE_URL"))
        .send()
        .await
        .unwrap();
    let now = chrono::Utc::now();
    assert_eq!(
        requeue_unsent_messages(&stack.store, &stack.queue, now).await.unwrap(),
        0,
        "too soon to tell"
    );
    let later = now + MESSAGES_REQUEUE_AFTER + chrono::Duration::minutes(1);
    assert_eq!(
        requeue_unsent_messages(&stack.store, &stack.queue, later)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        requeue_unsent_messages(&stack.store, &stack.queue, later)
            .await
            .unwrap(),
        0,
        "claimed once"
    );
    assert_eq!(stack.deliver_notifications().await, 2);
    assert_eq!(stack.sent_emails().await.len(), 2, "each sent once");
}

#[tokio::test]
async fn a_confirmation_given_up_on_and_then_redriven_is_reopened_once_and_sent_once() {
    use tour_core::domain::notify::MessageRef;
    use tour_core::ports::{Claim, SendOutcome};
    let stack = Stack::start().await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    let id = BookingId::parse(response(&booked)["appointment_id"].as_str().unwrap()).unwrap();
    let confirmation = MessageRef {
        booking_id: id.clone(),
        kind: MessageKind::Confirmation,
        version: 1,
    };
    let now = chrono::Utc::now();
    // Given up on (SES refused it every time).
    assert!(matches!(
        stack
            .store
            .claim_message(&confirmation, now, chrono::Duration::minutes(1))
            .await
            .unwrap(),
        Claim::Claimed(..)
    ));
    let failed = SendOutcome::Failed {
        error: "the sender's domain is not verified".into(),
    };
    stack.store.finish_message(&confirmation, &failed, now).await.unwrap();
    assert_eq!(
        stack
            .store
            .claim_message(&confirmation, now, chrono::Duration::minutes(1))
            .await
            .unwrap(),
        Claim::Failed
    );
    // The redrive reopens it once: pending again, from its first try.
    assert!(stack.store.reopen_failed(&confirmation, now).await.unwrap());
    assert!(
        !stack.store.reopen_failed(&confirmation, now).await.unwrap(),
        "only a failed one reopens"
    );
    match stack
        .store
        .claim_message(&confirmation, now, chrono::Duration::minutes(1))
        .await
        .unwrap()
    {
        Claim::Claimed(_, attempt) => assert_eq!(attempt, 1),
        other => panic!("{other:?}"),
    }
    // The whole path, with SES working again: given up on once more, then its queue message arrives on a first
    // receive (as a redriven one does) and the sender reopens and sends it; a second redrive sends nothing more.
    stack
        .store
        .finish_message(&confirmation, &SendOutcome::Failed { error: "again".into() }, now)
        .await
        .unwrap();
    stack.deliver_notifications().await;
    stack
        .queue
        .enqueue_messages(std::slice::from_ref(&confirmation))
        .await
        .unwrap();
    stack.deliver_notifications().await;
    let (_, deliveries) = stack.store.tour_with_messages(&id).await.unwrap().unwrap();
    let delivery = deliveries
        .iter()
        .find(|d| d.message == MessageKind::Confirmation)
        .unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Sent);
    let to_prospect = stack
        .sent_emails()
        .await
        .iter()
        .filter(|raw| read(raw).to.contains(&"prospect1@example.com".to_owned()))
        .count();
    assert_eq!(to_prospect, 1, "sent once");
}

/// The self-service link in an email's plain-text part.
fn manage_link(email: &Received) -> String {
    email
        .text
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{SELF_SERVICE_URL}?t=")))
        .unwrap_or_else(|| panic!("no link in {}", email.text))
        .to_owned()
}

fn token_of(link: &str) -> &str {
    link.split("?t=").nth(1).unwrap()
}

#[tokio::test]
async fn the_confirmations_link_reschedules_the_tour_through_the_chatbots_rules_and_is_used_up_by_it() {
    use tour_core::app::self_service::{Action, Page, act, manage_page};
    let stack = Stack::start().await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    let id = response(&booked)["appointment_id"].as_str().unwrap().to_owned();
    let before = stack.tour(&id).await;
    stack.deliver_notifications().await;
    let emails: Vec<Received> = stack.sent_emails().await.iter().map(|r| read(r)).collect();
    let confirmation = emails.iter().find(|e| e.to == ["prospect1@example.com"]).unwrap();
    let link = manage_link(confirmation);
    assert!(
        confirmation.html.replace("&#x2f;", "/").contains(&link),
        "the HTML part carries the same link"
    );
    let staff = emails.iter().find(|e| e.to != ["prospect1@example.com"]).unwrap();
    assert!(
        !staff.text.contains(&format!("{SELF_SERVICE_URL}?t=")),
        "staff alerts carry no prospect link"
    );

    let key = links().key;
    let deps = stack.self_service(&key);
    let now = chrono::Utc::now();
    let page = manage_page(&deps, token_of(&link), now).await.unwrap();
    let Page::Manage { times, .. } = &page else {
        panic!("{page:?}")
    };
    let pick = times.last().expect("free times offered").clone();
    let moved = act(
        &deps,
        token_of(&link),
        &Action::Move {
            start: chrono::DateTime::parse_from_rfc3339(&pick.start).unwrap().to_utc(),
        },
        now,
    )
    .await
    .unwrap();
    assert!(
        matches!(&moved, Page::Moved { tour } if tour.when == pick.when),
        "{moved:?}"
    );
    let after = stack.tour(&id).await;
    assert_eq!(after.start.to_rfc3339(), pick.start);
    assert_eq!(
        after.history.last().unwrap().source,
        tour_core::domain::lifecycle::ChangeSource::ProspectLink
    );
    assert_ne!(after.start, before.start);
    // ResMan gets the move as from the chatbot.
    stack.drain(3).await;
    let after = stack.tour(&id).await;
    let theirs = after
        .resman_appointment_id
        .as_ref()
        .expect("in ResMan")
        .as_str()
        .to_owned();
    let appointments = stack.appointments().await;
    let appointment = appointments
        .iter()
        .find(|a| a["appointment_id"] == theirs.as_str())
        .expect("the appointment in ResMan");
    assert_eq!(
        appointment["scheduled_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        after.start,
        "ResMan has the new time"
    );

    // The rescheduled email carries a fresh link; the first one is used.
    stack.deliver_notifications().await;
    let emails: Vec<Received> = stack.sent_emails().await.iter().map(|r| read(r)).collect();
    let rescheduled = emails
        .iter()
        .find(|e| e.to == ["prospect1@example.com"] && e.subject.starts_with("New time"))
        .expect("the rescheduled email");
    let fresh = manage_link(rescheduled);
    assert_ne!(fresh, link);
    let used = manage_page(&deps, token_of(&link), now).await.unwrap();
    assert!(matches!(&used, Page::Refused { reason: "used", .. }), "{used:?}");
    let working = manage_page(&deps, token_of(&fresh), now).await.unwrap();
    assert!(matches!(working, Page::Manage { .. }));
    // The leasing team's alert of the move links to the tour: who, what they asked, its history and its messages.
    let alert = emails
        .iter()
        .find(|e| e.subject.starts_with("Tour moved: Prospect Number1"))
        .expect("the staff alert of the move");
    let staff_link = alert
        .text
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{SELF_SERVICE_URL}/staff?t=")))
        .expect("a link to the tour");
    let view = tour_core::app::self_service::staff_page(&deps, token_of(staff_link), now)
        .await
        .unwrap();
    let Page::Staff {
        prospect,
        history,
        messages,
        ..
    } = &view
    else {
        panic!("{view:?}")
    };
    assert_eq!(prospect.email, "prospect1@example.com");
    assert!(
        history.last().unwrap().what.contains("through their email's link"),
        "{history:?}"
    );
    assert!(messages.iter().any(|m| m.what == "confirmation: sent"), "{messages:?}");
    // Cancelled through the fresh link: every link of the tour is refused from then on.
    let cancelled = act(&deps, token_of(&fresh), &Action::Cancel, now).await.unwrap();
    assert!(matches!(cancelled, Page::Cancelled { .. }));
    let refused = manage_page(&deps, token_of(&fresh), now).await.unwrap();
    assert!(
        matches!(
            &refused,
            Page::Refused {
                reason: "cancelled",
                ..
            }
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn two_prospects_moving_to_one_time_through_their_links_leave_one_winner_on_dynamodb() {
    use tour_core::app::self_service::{Action, Page, act};
    let stack = Stack::start().await;
    let key = links().key;
    let deps = stack.self_service(&key);
    // Every in-person agent busy at 15:00 but one, and two prospects who want 15:00.
    let agents = stack
        .property
        .agents
        .iter()
        .filter(|a| a.tour_types.contains(&tour_core::domain::TourType::InPerson))
        .count();
    for n in 0..agents - 1 {
        stack
            .book(&command(&stack.property, 10 + n, "15:00"), None)
            .await
            .unwrap();
    }
    let mut links = Vec::new();
    for (n, time) in [(1, "10:00"), (2, "11:00")] {
        let booked = stack.book(&command(&stack.property, n, time), None).await.unwrap();
        let tour = stack.tour(response(&booked)["appointment_id"].as_str().unwrap()).await;
        links.push(tour_core::domain::link::LinkToken::manage(&tour).encode(&key));
    }
    let date = bookable_date(&stack.property);
    let three =
        tour_core::domain::slots::resolve_local(stack.property.time_zone, date.and_hms_opt(15, 0, 0).unwrap()).unwrap();
    let to = Action::Move { start: three };
    let now = chrono::Utc::now();
    let (a, b) = tokio::join!(act(&deps, &links[0], &to, now), act(&deps, &links[1], &to, now));
    let pages = [a.unwrap(), b.unwrap()];
    let won = pages.iter().filter(|p| matches!(p, Page::Moved { .. })).count();
    let taken = pages.iter().filter(|p| matches!(p, Page::Taken { .. })).count();
    assert_eq!((won, taken), (1, 1), "{pages:?}");
    assert_no_overlap(&stack.appointments().await);
}

#[tokio::test]
async fn the_thank_yous_rating_links_record_one_rating_per_tour_however_many_clicks() {
    use tour_core::app::self_service::{Page, rate};
    use tour_core::ports::RatingStore;
    let stack = Stack::start().await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    let id = response(&booked)["appointment_id"].as_str().unwrap().to_owned();
    stack.update(&id, json!({"status": "completed"}), None).await.unwrap();
    stack.deliver_notifications().await;
    let emails: Vec<Received> = stack.sent_emails().await.iter().map(|r| read(r)).collect();
    let thanks = emails
        .iter()
        .find(|e| e.subject.starts_with("Thank you for touring"))
        .expect("the thank-you");
    let rate_link = |score: u8| {
        thanks
            .text
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{score}: ")))
            .unwrap_or_else(|| panic!("no link for {score} in {}", thanks.text))
            .to_owned()
    };
    let (four, one) = (rate_link(4), rate_link(1));
    assert!(four.starts_with(&format!("{SELF_SERVICE_URL}/rate?t=")) && four.ends_with("&score=4"));
    let token = |link: &str| link.split("?t=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let key = links().key;
    let deps = stack.self_service(&key);
    let now = chrono::Utc::now();
    // A double click on 4 and a later click on 1: one rating, the first.
    let (t4, t1) = (token(&four), token(&one));
    let (a, b) = tokio::join!(rate(&deps, &t4, "4", now), rate(&deps, &t4, "4", now));
    let firsts = [a.unwrap(), b.unwrap()]
        .iter()
        .filter(|p| matches!(p, Page::Rated { first: true, .. }))
        .count();
    assert_eq!(firsts, 1);
    let later = rate(&deps, &t1, "1", now).await.unwrap();
    assert!(
        matches!(
            later,
            Page::Rated {
                score: 4,
                first: false,
                ..
            }
        ),
        "{later:?}"
    );
    let stored = stack
        .store
        .rating(&BookingId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.score.get(), 4);
}

#[tokio::test]
async fn the_new_tour_alerts_rating_links_record_one_staff_rating_and_what_went_wrong_and_the_figures_count_it() {
    use tour_core::app::analytics::{AnalyticsDeps, AnalyticsQuery, tour_metrics};
    use tour_core::app::self_service::{Page, staff_rate, staff_went_wrong};
    let stack = Stack::start().await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    let id = response(&booked)["appointment_id"].as_str().unwrap().to_owned();
    stack.deliver_notifications().await;
    let emails: Vec<Received> = stack.sent_emails().await.iter().map(|r| read(r)).collect();
    let alert = emails
        .iter()
        .find(|e| e.subject.starts_with("New tour:"))
        .expect("the new-tour alert");
    assert!(alert.text.contains("Was this booking useful?"), "{}", alert.text);
    let link = |score: u8| {
        alert
            .text
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{score}: ")))
            .unwrap_or_else(|| panic!("no link for {score} in {}", alert.text))
            .to_owned()
    };
    let (two, five) = (link(2), link(5));
    assert!(two.starts_with(&format!("{SELF_SERVICE_URL}/staff-rate?t=")) && two.ends_with("&score=2"));
    let token = |link: &str| link.split("?t=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let key = links().key;
    let deps = stack.self_service(&key);
    let now = chrono::Utc::now();
    // Two staff click at once, 2 and 5: DynamoDB's condition keeps one rating, and the other sees it.
    let (t2, t5) = (token(&two), token(&five));
    let (a, b) = tokio::join!(staff_rate(&deps, &t2, "2", now), staff_rate(&deps, &t5, "5", now));
    let pages = [a.unwrap(), b.unwrap()];
    let firsts: Vec<u8> = pages
        .iter()
        .filter_map(|p| match p {
            Page::StaffRated { first: true, score, .. } => Some(*score),
            _ => None,
        })
        .collect();
    assert_eq!(firsts.len(), 1, "{pages:?}");
    assert!(
        pages
            .iter()
            .all(|p| matches!(p, Page::StaffRated { score, .. } if *score == firsts[0])),
        "the later click is shown the rating that stands: {pages:?}"
    );
    // What went wrong, said twice: the first answer stays.
    let form = |values: &[&str]| -> Vec<(String, String)> {
        values
            .iter()
            .map(|v| ("went_wrong".to_owned(), (*v).to_owned()))
            .collect()
    };
    let said = staff_went_wrong(&deps, &token(&two), &form(&["wrong_time", "missing_details"]), now)
        .await
        .unwrap();
    assert!(
        matches!(&said, Page::StaffRated { went_wrong, choices, .. } if went_wrong.len() == 2 && choices.is_empty()),
        "{said:?}"
    );
    staff_went_wrong(&deps, &token(&two), &form(&["other"]), now)
        .await
        .unwrap();
    // The figures read it back from the analytics index.
    let date = stack
        .tour(&id)
        .await
        .start
        .with_timezone(&stack.property.time_zone)
        .date_naive();
    let query = AnalyticsQuery::parse(Some(DEMO_PROPERTY), Some(&date.to_string()), Some(&date.to_string())).unwrap();
    stack.roll_up_all().await;
    let deps = AnalyticsDeps {
        properties: &stack.store,
        rollups: &stack.store,
    };
    let m = serde_json::to_value(tour_metrics(&deps, &query, now).await.unwrap()).unwrap();
    assert_eq!(m["staff_rating_count"], 1);
    assert_eq!(m["staff_satisfaction"], if firsts[0] == 5 { 1.0 } else { 0.0 });
    assert_eq!(m["staff_satisfaction_goal"], 0.9);
    assert_eq!(m["staff_went_wrong"], json!({"missing_details": 1, "wrong_time": 1}));
}

#[tokio::test]
async fn the_weekly_digest_goes_once_to_the_leasing_team_and_its_rating_links_rate_the_weeks_bookings() {
    use tour_core::app::budget::TimeBudget;
    use tour_core::app::digest::{DigestDeps, send_digest_now, send_due_digests};
    use tour_core::app::self_service::{Page, staff_rate};
    use tour_core::domain::digest::DigestWeek;
    let stack = Stack::start().await;
    let mut ids = Vec::new();
    for (n, time) in [(1, "10:00"), (2, "11:00")] {
        let booked = stack.book(&command(&stack.property, n, time), None).await.unwrap();
        let id = response(&booked)["appointment_id"].as_str().unwrap().to_owned();
        stack.update(&id, json!({"status": "completed"}), None).await.unwrap();
        ids.push(id);
    }
    let zone = stack.property.time_zone;
    let week = DigestWeek::of(bookable_date(&stack.property));
    // The Monday after that week, 8:05 on the property's clock.
    let monday = week.period().to() + chrono::Duration::days(1);
    let now = tour_core::domain::slots::resolve_local(zone, monday.and_hms_opt(8, 5, 0).unwrap()).unwrap();
    let mailer = tour_aws::ses::SesMailer::new(
        &stack.aws.sdk().await,
        stack.aws.var("SENDER_EMAIL"),
        Some(stack.aws.var("SES_CONFIGURATION_SET").to_owned()),
        std::time::Duration::from_secs(5),
    );
    let (templates, links) = (tour_core::domain::email::Templates::defaults().unwrap(), links());
    let deps = DigestDeps {
        properties: &stack.store,
        tours: &stack.store,
        analytics: &stack.store,
        digests: &stack.store,
        mailer: &mailer,
        templates: &templates,
        links: &links,
    };
    let budget = || {
        TimeBudget::lasting(
            std::time::Duration::from_secs(50),
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(2),
        )
    };
    let before = stack.sent_emails().await.len();
    // Two ticks at once (overlapping invocations), then a later one: DynamoDB's conditions let one send it.
    let (one, two) = (budget(), budget());
    let (a, b) = tokio::join!(send_due_digests(&deps, now, &one), send_due_digests(&deps, now, &two));
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    let later = now + chrono::Duration::hours(3);
    assert_eq!(send_due_digests(&deps, later, &budget()).await.unwrap(), 0);
    let emails: Vec<Received> = stack.sent_emails().await[before..].iter().map(|r| read(r)).collect();
    let digests: Vec<&Received> = emails
        .iter()
        .filter(|e| e.subject.starts_with("Your week at"))
        .collect();
    assert_eq!(
        digests.len(),
        1,
        "{:?}",
        emails.iter().map(|e| &e.subject).collect::<Vec<_>>()
    );
    let digest = digests[0];
    assert!(
        digest.to.iter().any(|t| t == "leasing@maplegrove.example"),
        "{:?}",
        digest.to
    );
    assert!(digest.text.contains("Tours held:        2"), "{}", digest.text);
    // The analytics index holds no personal data: the digest reads the listed tours' prospects.
    for id in &ids {
        let name = stack.tour(id).await.prospect_name;
        assert!(
            !name.is_empty() && digest.text.contains(&name),
            "{name} in {}",
            digest.text
        );
    }
    // One click from the digest rates the first tour's booking.
    let fours: Vec<&str> = digest
        .text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("4: "))
        .collect();
    assert_eq!(fours.len(), 2, "a rating line per unrated tour: {}", digest.text);
    let token = fours[0]
        .split("?t=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let key = links.key.clone();
    let page = staff_rate(&stack.self_service(&key), &token, "4", later).await.unwrap();
    assert!(
        matches!(
            page,
            Page::StaffRated {
                first: true,
                score: 4,
                ..
            }
        ),
        "{page:?}"
    );
    // The operator's resend lists only the tour still unrated, and counts the answer.
    let property = stack.property.clone();
    let sent = send_digest_now(&deps, &property, week, later).await.unwrap();
    assert!(sent.is_ok(), "{sent:?}");
    let emails: Vec<Received> = stack.sent_emails().await.iter().map(|r| read(r)).collect();
    let resent = emails
        .iter()
        .rev()
        .find(|e| e.subject.starts_with("Your week at"))
        .unwrap();
    assert_eq!(
        resent.text.lines().filter(|l| l.trim().starts_with("4: ")).count(),
        1,
        "{}",
        resent.text
    );
    assert!(
        resent.text.contains("100% rated useful (4 or 5 of 5) over 1 answer;"),
        "{}",
        resent.text
    );
}

#[tokio::test]
async fn a_pending_booking_that_resman_then_refuses_tells_the_prospect_and_withdraws_the_invite() {
    let stack = Stack::start().await;
    let booked = stack.book_while_resman_is_down(1, "10:00").await;
    let id = response(&booked)["appointment_id"].as_str().unwrap().to_owned();
    let tour = stack.tour(&id).await;
    // The prospect was told "pending" and the confirmation goes out at once.
    stack.deliver_notifications().await;
    // Meanwhile staff give the agent that time in ResMan, so ResMan refuses the booking when it is back.
    stack.faults(json!({})).await;
    stack
        .control(
            reqwest::Method::POST,
            "/_sandbox/appointments",
            Some(json!({
                "property_id": DEMO_PROPERTY, "agent_id": tour.holder.agent().unwrap().to_string(),
                "scheduled_at": tour.start.to_rfc3339(), "duration_minutes": 45,
                "prospect": {"first_name": "Walk", "last_name": "In", "email": "walkin@example.com"}
            })),
        )
        .await;
    stack.drain(3).await;
    let after = stack.tour(&id).await;
    assert_eq!(after.sync_status, tour_core::domain::record::SyncStatus::Rejected);
    assert_eq!(
        stack.deliver_notifications().await,
        2,
        "the prospect and staff hear of it"
    );
    let emails: Vec<Received> = stack.sent_emails().await.iter().map(|r| read(r)).collect();
    let sorry = emails
        .iter()
        .find(|e| e.subject.starts_with("We could not book your tour"))
        .expect("the not-booked email");
    assert_eq!(sorry.to, ["prospect1@example.com"]);
    assert!(
        sorry
            .text
            .contains(&when_in_words(tour.start, stack.property.time_zone))
    );
    assert!(!sorry.text.contains("?t="), "no link to a tour that does not exist");
    let (method, calendar) = sorry.invite.as_ref().expect("the invite withdrawn");
    assert_eq!(method, "CANCEL");
    assert_eq!(
        icalendar::Component::get_uid(event(calendar)),
        Some(format!("{id}@tour-booking").as_str())
    );
    assert!(
        emails
            .iter()
            .any(|e| e.subject.starts_with("Tour cancelled: Prospect Number1")),
        "staff, alerted of the new tour, hear it is off"
    );
}

#[tokio::test]
async fn staff_confirming_a_second_after_the_booking_sends_the_prospect_one_email_with_one_invitation() {
    use icalendar::Component;
    let stack = Stack::start().await;
    stack.webhook_on().await;
    let booked = stack.book(&command(&stack.property, 1, "10:00"), None).await.unwrap();
    let body = response(&booked);
    let id = body["appointment_id"].as_str().unwrap().to_owned();
    // A second later, before the booking's confirmation has gone, staff confirm the tour in ResMan.
    let theirs = body["resman_appointment_id"].as_str().unwrap().to_owned();
    stack.staff_change(&theirs, json!({"status": "Confirmed"})).await;
    stack.webhooks_settled().await;
    assert_eq!(
        stack.tour(&id).await.version,
        2,
        "staff's confirmation reached the tour"
    );
    stack.deliver_notifications().await;
    let to_prospect: Vec<Received> = stack
        .sent_emails()
        .await
        .iter()
        .map(|r| read(r))
        .filter(|e| e.to == ["prospect1@example.com"])
        .collect();
    assert_eq!(to_prospect.len(), 1, "one email, not two with one invitation");
    assert!(to_prospect[0].text.contains("confirmed it"), "{}", to_prospect[0].text);
    let (method, calendar) = to_prospect[0].invite.as_ref().unwrap();
    assert_eq!((method.as_str(), event(calendar).get_sequence()), ("REQUEST", Some(2)));
    let (_, deliveries) = stack
        .store
        .tour_with_messages(&BookingId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let superseded = deliveries
        .iter()
        .find(|d| d.status == DeliveryStatus::Superseded)
        .expect("the second marked superseded");
    assert!(
        superseded
            .superseded_because
            .as_deref()
            .is_some_and(|why| why.starts_with("repeats the invitation (REQUEST:2)")),
        "{superseded:?}"
    );
}

#[tokio::test]
async fn outcomes_act_once_a_follow_up_reaches_prospect_and_guide_interest_sends_the_application_link_and_not_interested_ends_the_messages()
 {
    let stack = Stack::start().await;
    let book = async |n: usize, time: &str| {
        let booked = stack.book(&command(&stack.property, n, time), None).await.unwrap();
        response(&booked)["appointment_id"].as_str().unwrap().to_owned()
    };
    let (first, second) = (book(1, "10:00").await, book(2, "11:00").await);
    assert_eq!(
        stack.deliver_notifications().await,
        4,
        "two confirmations, two staff alerts"
    );
    let sent_before = stack.sent_emails().await.len();
    let emails_since =
        async |from: usize| -> Vec<Received> { stack.sent_emails().await[from..].iter().map(|r| read(r)).collect() };

    // Follow-up needed: the prospect hears the guide will be in touch; the guide and staff get the context.
    let follow_up = json!({"status": "completed", "outcome": "follow_up_needed", "staff_notes": "Asked about parking"});
    stack.update(&first, follow_up.clone(), None).await.unwrap();
    assert_eq!(
        stack.deliver_notifications().await,
        3,
        "thank-you, follow-up, staff follow-up"
    );
    let emails = emails_since(sent_before).await;
    let to_prospect = emails
        .iter()
        .find(|e| e.subject.starts_with("Your questions about"))
        .expect("the prospect's follow-up");
    assert_eq!(to_prospect.to, ["prospect1@example.com"]);
    let to_staff = emails
        .iter()
        .find(|e| e.subject.starts_with("Follow up with the prospect: "))
        .expect("the staff follow-up");
    assert!(
        to_staff.text.contains("please get in touch") && to_staff.text.contains("Asked about parking"),
        "{}",
        to_staff.text
    );
    assert!(!to_staff.to.contains(&"prospect1@example.com".to_owned()));
    // The same outcome again owes nothing.
    stack
        .update(&first, json!({"outcome": "follow_up_needed"}), None)
        .await
        .unwrap();
    assert_eq!(stack.deliver_notifications().await, 0, "nothing twice");

    // Interested: the application link, once.
    let sent = stack.sent_emails().await.len();
    stack
        .update(&first, json!({"outcome": "interested"}), None)
        .await
        .unwrap();
    assert_eq!(stack.deliver_notifications().await, 1);
    let emails = emails_since(sent).await;
    let apply_url = stack.property.apply_url.clone().unwrap();
    assert!(
        emails.len() == 1 && emails[0].subject.contains("apply online") && emails[0].text.contains(&apply_url),
        "{:?}",
        emails.iter().map(|e| &e.subject).collect::<Vec<_>>()
    );

    // Not interested: the thank-you owed with it is not sent, and says why on the record.
    let sent = stack.sent_emails().await.len();
    stack
        .update(
            &second,
            json!({"status": "completed", "outcome": "not_interested"}),
            None,
        )
        .await
        .unwrap();
    stack.deliver_notifications().await;
    assert_eq!(
        stack.sent_emails().await.len(),
        sent,
        "no more messages to that prospect"
    );
    let (_, deliveries) = stack
        .store
        .tour_with_messages(&BookingId::parse(&second).unwrap())
        .await
        .unwrap()
        .unwrap();
    let thanks = deliveries.iter().find(|d| d.message == MessageKind::ThankYou).unwrap();
    assert_eq!(
        (thanks.status, thanks.superseded_because.as_deref()),
        (DeliveryStatus::Superseded, Some("the prospect is not interested"))
    );
}

/// A booking at the demo property for prospect `n` at `time`, who agreed to texts in the conversation.
fn agreeing(
    stack: &Stack,
    n: usize,
    time: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> tour_core::domain::booking::BookTourCommand {
    let mut command = command(&stack.property, n, time);
    command.sms_consent = Some(tour_core::domain::consent::SmsConsent {
        words: "Maple Grove may text me about my tour. Reply STOP to stop.".into(),
        agreed_at: at - chrono::Duration::minutes(1),
    });
    command
}

async fn deliveries(stack: &Stack, id: &str) -> Vec<(MessageKind, DeliveryStatus)> {
    let (_, deliveries) = stack
        .store
        .tour_with_messages(&BookingId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut kinds: Vec<_> = deliveries.iter().map(|d| (d.message, d.status)).collect();
    kinds.sort_by_key(|(kind, _)| kind.as_str());
    kinds
}

#[tokio::test]
async fn a_prospect_who_agreed_to_texts_gets_the_booking_and_the_reminder_by_text_and_one_who_did_not_by_email_only() {
    use DeliveryStatus::*;
    use MessageKind::*;
    use chrono::Duration;
    use tour_core::app::notify::queue_due_reminders;
    use tour_core::ports::{Consents, TextError};
    let stack = Stack::start().await;
    stack.texting().await;
    let zone = stack.property.time_zone;
    let date = bookable_date(&stack.property);
    let local = |date: chrono::NaiveDate, time: &str| {
        let at = date.and_time(time.parse().unwrap());
        tour_core::domain::slots::resolve_local(zone, at).unwrap()
    };
    let book = async |command, at| {
        let booked = stack.book_at(&command, None, at).await.unwrap();
        stack.tour(response(&booked)["appointment_id"].as_str().unwrap()).await
    };
    let tick = async |at| {
        queue_due_reminders(&stack.scheduler(), at, &integration_tests::invocation(60))
            .await
            .unwrap()
    };
    // The first books at 9:30 pm the evening before (quiet hours), the others at 3 pm that day.
    let evening = date.pred_opt().unwrap();
    let (late, afternoon) = (local(evening, "21:30"), local(evening, "15:00"));
    let agreed = book(agreeing(&stack, 1, "12:00", late), late).await;
    let silent = book(command(&stack.property, 2, "11:00"), afternoon).await;
    let failing = book(agreeing(&stack, 3, "14:00", afternoon), afternoon).await;
    stack.deliver_notifications().await;
    assert_eq!(
        stack.texts.sent().len(),
        1,
        "the afternoon's agreeing prospect only: {:?}",
        stack.texts.sent()
    );
    assert!(
        !deliveries(&stack, agreed.booking_id.as_str())
            .await
            .iter()
            .any(|(k, _)| *k == TextConfirmation),
        "the evening's text waits out quiet hours"
    );
    assert_eq!(tick(local(date, "07:59")).await, 0, "not before 8 am");
    assert_eq!(tick(local(date, "08:00")).await, 1, "at 8 am its text is owed");
    stack.deliver_notifications().await;
    let texts = stack.texts.sent();
    assert_eq!(texts.len(), 2, "the two who agreed: {texts:?}");
    assert!(
        texts
            .iter()
            .all(|t| t.body.contains("your tour is booked for") && t.body.contains("Reply C to confirm"))
    );
    assert_eq!(
        deliveries(&stack, agreed.booking_id.as_str()).await,
        [(Confirmation, Sent), (StaffNew, Sent), (TextConfirmation, Sent)]
    );
    assert_eq!(
        deliveries(&stack, silent.booking_id.as_str()).await,
        [(Confirmation, Sent), (StaffNew, Sent), (TextConfirmation, Superseded)],
        "no consent, no text: on record as not sent"
    );

    // Two hours before: a text for the one who agreed, an email for the other, once each.
    let two_hours_before = |start: chrono::DateTime<chrono::Utc>| start - Duration::hours(2) + Duration::minutes(1);
    assert_eq!(
        tick(two_hours_before(agreed.start)).await,
        3,
        "the 11:00 and 12:00 tours' reminders, and staff's alert that the 12:00 prospect (asked by text at 9:00) \
         has not confirmed; none for the 11:00 one, never asked"
    );
    assert_eq!(stack.deliver_notifications().await, 3);
    assert!(
        deliveries(&stack, agreed.booking_id.as_str())
            .await
            .contains(&(StaffUnconfirmed, Sent))
    );
    assert!(
        !deliveries(&stack, silent.booking_id.as_str())
            .await
            .iter()
            .any(|(k, _)| *k == StaffUnconfirmed)
    );
    assert_eq!(stack.texts.sent().len(), 3);
    assert!(stack.texts.sent()[2].body.contains("today for your tour"));
    assert_eq!(stack.texts.sent()[2].to.expose(), agreed.prospect_phone);
    assert!(
        deliveries(&stack, agreed.booking_id.as_str())
            .await
            .contains(&(TextLastReminder, Sent))
    );
    assert!(
        !deliveries(&stack, agreed.booking_id.as_str())
            .await
            .iter()
            .any(|(k, _)| *k == LastReminder),
        "no email too"
    );
    assert!(
        deliveries(&stack, silent.booking_id.as_str())
            .await
            .contains(&(LastReminder, Sent))
    );

    // The number opted out at the service meanwhile: the text fails, the email goes instead, and the revocation is kept.
    stack.texts.fail_next(TextError::OptedOut);
    tick(two_hours_before(failing.start)).await;
    stack.deliver_notifications().await;
    let kinds = deliveries(&stack, failing.booking_id.as_str()).await;
    assert!(
        kinds.contains(&(TextLastReminder, Failed)) && kinds.contains(&(LastReminder, Sent)),
        "{kinds:?}"
    );
    let phone = tour_core::domain::Phone::parse(&failing.prospect_phone).unwrap();
    let state = stack.store.consent(&failing.property_id, &phone).await.unwrap().state();
    assert!(
        matches!(state, tour_core::domain::consent::ConsentState::Revoked { .. }),
        "{state:?}"
    );
}

#[tokio::test]
async fn a_prospect_confirms_by_replying_c_and_later_cancels_by_replying_cancel_with_one_final_text_on_dynamodb() {
    use DeliveryStatus::*;
    use MessageKind::*;
    use chrono::Duration;
    use tour_core::app::lifecycle::UpdateDeps;
    use tour_core::app::replies::{InboundText, ReplyDeps, ReplyOutcome, take_reply};
    use tour_core::domain::texts::Reply;
    let stack = Stack::start().await;
    stack.texting().await;
    let zone = stack.property.time_zone;
    let date = bookable_date(&stack.property);
    let afternoon =
        tour_core::domain::slots::resolve_local(zone, date.pred_opt().unwrap().and_hms_opt(15, 0, 0).unwrap()).unwrap();
    let booked = stack
        .book_at(&agreeing(&stack, 1, "10:00", afternoon), None, afternoon)
        .await
        .unwrap();
    let tour = stack.tour(response(&booked)["appointment_id"].as_str().unwrap()).await;
    stack.deliver_notifications().await;
    assert_eq!(stack.texts.sent().len(), 1, "the confirmation text");
    // Its receipt marks it delivered, once.
    let receipt = tour_core::app::notify::Receipt {
        message: tour_core::domain::notify::MessageRef {
            booking_id: tour.booking_id.clone(),
            kind: TextConfirmation,
            version: tour.version,
        },
        provider_message_id: "text-1".into(),
        delivered: true,
        failure: None,
        at: afternoon,
    };
    let take = async || tour_core::app::notify::take_receipt(&stack.store, &stack.queue, &receipt, afternoon).await;
    assert!(take().await.unwrap());
    assert!(!take().await.unwrap(), "a receipt twice marks once");
    let (_, sent) = stack.store.tour_with_messages(&tour.booking_id).await.unwrap().unwrap();
    let text = sent.iter().find(|d| d.message == TextConfirmation).unwrap();
    assert!(text.receipt.as_ref().is_some_and(|r| r.delivered), "{text:?}");

    let deps = ReplyDeps {
        update: UpdateDeps {
            properties: &stack.store,
            calendar: &stack.store,
            tours: &stack.store,
            queue: &stack.queue,
        },
        messages: &stack.store,
        consents: &stack.store,
        text_log: &stack.store,
    };
    let reply = |body: &str, id: &str| InboundText {
        from: tour_core::domain::Phone::parse(&tour.prospect_phone).unwrap(),
        body: body.into(),
        inbound_id: id.into(),
        // The service names the text the reply answers: the confirmation's id, as the text service gave it.
        previous: Some("text-1".into()),
    };
    let later = afternoon + Duration::hours(1);
    let c = take_reply(&deps, &reply("C", "in-1"), later).await.unwrap();
    assert_eq!(c, ReplyOutcome::Applied(Reply::Confirm));
    assert_eq!(
        take_reply(&deps, &reply("C", "in-1"), later).await.unwrap(),
        ReplyOutcome::Duplicate
    );
    let confirmed = stack.tour(tour.booking_id.as_str()).await;
    assert_eq!(
        confirmed.prospect_confirmed_at,
        Some(later),
        "staff see the prospect's word"
    );
    assert_eq!(confirmed.version, tour.version + 1);
    let view = stack.view(tour.booking_id.as_str()).await;
    let shown = chrono::DateTime::parse_from_rfc3339(view["prospect_confirmed_at"].as_str().unwrap()).unwrap();
    assert_eq!(shown, later, "in the tour's view: {view}");
    stack.deliver_notifications().await;
    assert!(
        stack.texts.sent()[1].body.contains("thanks, see you"),
        "{:?}",
        stack.texts.sent()
    );

    // A question no keyword answers: kept with her personal data, on the tour for the chatbot, and sent to staff.
    let question = take_reply(&deps, &reply("Is parking free?", "in-q"), later + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(question, ReplyOutcome::Applied(Reply::Other));
    let view = stack.view(tour.booking_id.as_str()).await;
    assert_eq!(view["prospect_reply"]["words"], "Is parking free?", "{view}");
    stack.deliver_notifications().await;
    let asked = stack.sent_emails().await.iter().map(|raw| read(raw)).any(|m| {
        m.subject.starts_with("The prospect texted: Prospect Number1") && m.text.contains("\"Is parking free?\"")
    });
    assert!(asked, "the staff alert with her words");
    let cancel = take_reply(&deps, &reply("CANCEL", "in-2"), later + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(cancel, ReplyOutcome::Applied(Reply::Cancel));
    let cancelled = stack.tour(tour.booking_id.as_str()).await;
    assert_eq!(cancelled.status, tour_core::domain::lifecycle::TourStatus::Cancelled);
    stack.deliver_notifications().await;
    let texts = stack.texts.sent();
    assert_eq!(texts.len(), 3, "one final text: {texts:?}");
    assert!(texts[2].body.contains("is cancelled and we will not text you again"));
    let kinds = deliveries(&stack, tour.booking_id.as_str()).await;
    for expected in [
        (Cancelled, Sent),
        (StaffCancelled, Sent),
        (TextCancelledAndStopped, Sent),
        (TextCancelled, Superseded),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
    // ResMan is told, as for any cancellation.
    stack.drain(5).await;
    let synced = stack.tour(tour.booking_id.as_str()).await;
    assert_eq!(synced.resman_version, synced.version, "ResMan has the cancellation");
    // And no further texts: the reminders are gone with the tour, and a text owed now finds consent revoked.
    let tick = queue_due_reminders_at(&stack, synced.start - Duration::hours(2) + Duration::minutes(1)).await;
    assert_eq!(tick, 0);
    assert_eq!(stack.texts.sent().len(), 3);
}

async fn queue_due_reminders_at(stack: &Stack, at: chrono::DateTime<chrono::Utc>) -> usize {
    tour_core::app::notify::queue_due_reminders(&stack.scheduler(), at, &integration_tests::invocation(60))
        .await
        .unwrap()
}
