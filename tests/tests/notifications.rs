//! The messages a tour owes, sent through SES v2 (moto) and read back from moto's store: recipients, subject, the
//! local time with its zone named, both parts, and an invite that a real parser reads back with the right instant,
//! `UID`, `SEQUENCE` and `METHOD`.

use integration_tests::stack::*;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::json;
use shared::domain::booking::BookingId;
use shared::domain::notify::{DeliveryStatus, MessageKind, when_in_words};
use shared::ports::{MessageStore, SyncQueue};

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
    let confirmation_ref = shared::domain::notify::MessageRef {
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
    use shared::app::notify::queue_due_reminders;
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
        queue_due_reminders(&stack.store, &stack.store, &stack.queue, at)
            .await
            .unwrap()
    };

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
    use shared::app::notify::{MESSAGES_REQUEUE_AFTER, requeue_unsent_messages};
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
