//! A message made into an email: the words from the templates in `shared/core/templates/` (minijinja), in the property's
//! time zone with the zone named, and for tour messages a calendar invite (RFC 5545) whose `UID` stays the tour's
//! and whose `SEQUENCE` is the tour's version, so every calendar updates the one event.

use super::link::Links;
use super::notify::{Audience, MessageKind, kind_in_words, when_in_words};
use super::property::Property;
use super::record::TourRecord;
use chrono::{DateTime, Duration, Utc};
use icalendar::{Alarm, Calendar, Component, EventLike, EventStatus, Property as IcalProperty, Trigger};
use serde::Serialize;

/// An email ready for the mailer (the message; an address is a `contact::Email`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The name the email comes from (the property's); the address is the configured sender's.
    pub from_name: String,
    /// Where a reply goes: the leasing office.
    pub reply_to: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub invite: Option<Invite>,
}

/// A calendar invite: its `METHOD` (for the MIME part's `method=` parameter) and the `.ics` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub method: &'static str,
    pub ics: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {name}: {reason}")]
    Template { name: String, reason: String },
    #[error("the message has nobody to go to")]
    NoRecipient,
}

/// The default templates, compiled into the binary (`shared/core/templates/`).
const DEFAULTS: [(&str, &str); 29] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("_details.txt", include_str!("../../templates/_details.txt")),
    ("_details.html", include_str!("../../templates/_details.html")),
    ("confirmation.txt", include_str!("../../templates/confirmation.txt")),
    ("confirmation.html", include_str!("../../templates/confirmation.html")),
    ("confirmed.txt", include_str!("../../templates/confirmed.txt")),
    ("confirmed.html", include_str!("../../templates/confirmed.html")),
    ("rescheduled.txt", include_str!("../../templates/rescheduled.txt")),
    ("rescheduled.html", include_str!("../../templates/rescheduled.html")),
    ("cancelled.txt", include_str!("../../templates/cancelled.txt")),
    ("cancelled.html", include_str!("../../templates/cancelled.html")),
    ("thank_you.txt", include_str!("../../templates/thank_you.txt")),
    ("thank_you.html", include_str!("../../templates/thank_you.html")),
    ("rebook.txt", include_str!("../../templates/rebook.txt")),
    ("rebook.html", include_str!("../../templates/rebook.html")),
    ("not_booked.txt", include_str!("../../templates/not_booked.txt")),
    ("not_booked.html", include_str!("../../templates/not_booked.html")),
    ("reminder.txt", include_str!("../../templates/reminder.txt")),
    ("reminder.html", include_str!("../../templates/reminder.html")),
    ("last_reminder.txt", include_str!("../../templates/last_reminder.txt")),
    ("last_reminder.html", include_str!("../../templates/last_reminder.html")),
    ("follow_up.txt", include_str!("../../templates/follow_up.txt")),
    ("follow_up.html", include_str!("../../templates/follow_up.html")),
    ("apply_invite.txt", include_str!("../../templates/apply_invite.txt")),
    ("apply_invite.html", include_str!("../../templates/apply_invite.html")),
    ("staff_alert.txt", include_str!("../../templates/staff_alert.txt")),
    ("staff_alert.html", include_str!("../../templates/staff_alert.html")),
    ("digest.txt", include_str!("../../templates/digest.txt")),
    ("digest.html", include_str!("../../templates/digest.html")),
];

/// The templates, parsed once per cold start.
pub struct Templates {
    env: minijinja::Environment<'static>,
}

#[derive(Serialize)]
struct PropertyView<'a> {
    name: &'a str,
    address: &'a str,
    apply_url: Option<&'a str>,
    office_phone: Option<&'a str>,
    office_email: Option<&'a str>,
}

#[derive(Serialize)]
struct ProspectView<'a> {
    first_name: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct TourView<'a> {
    id: &'a str,
    when: String,
    kind: &'static str,
    minutes: i64,
    guide: String,
    /// Whether the tour stands confirmed as the message is rendered: a message rendered after its tour moved on
    /// says where the tour stands now.
    confirmed: bool,
    /// A cancelled tour whose appointment ResMan still shows (the note alone was written, see
    /// `Property::resman_cancel_word`): staff must cancel it there. Its ResMan appointment id.
    cancel_in_resman: Option<String>,
    location: Option<String>,
    virtual_link: Option<String>,
    instructions: Option<String>,
    unit_preferences: Option<&'a str>,
    special_requests: Option<&'a str>,
    /// What staff noted on the tour (staff alerts show it).
    staff_notes: Option<&'a str>,
    /// When ResMan and our tour record different outcomes: ours and ResMan's, in words.
    outcomes: Option<OutcomesView>,
    /// The prospect's latest words by text that no keyword answered (staff's reply alert shows them).
    reply: Option<&'a str>,
}

#[derive(Serialize)]
struct OutcomesView {
    ours: &'static str,
    resman: &'static str,
}

fn cancel_in_resman(tour: &TourRecord, property: &Property) -> Option<String> {
    let still_held = tour.held_in_resman().is_some_and(|h| h.status.holds_time());
    (tour.status == super::lifecycle::TourStatus::Cancelled && !property.resman_cancel_word && still_held)
        .then(|| tour.resman_appointment_id.as_ref().map(ToString::to_string))
        .flatten()
}

/// A tour's outcome in a leasing team's words.
fn outcome_in_words(status: super::lifecycle::TourStatus) -> &'static str {
    use super::lifecycle::TourStatus as S;
    match status {
        S::Completed => "the tour took place",
        S::NoShow => "the prospect did not come",
        S::Cancelled => "the tour was cancelled",
        S::Confirmed => "confirmed",
        S::Scheduled => "scheduled",
        S::Released => "never booked",
    }
}

#[derive(Serialize)]
struct RateLink {
    score: u8,
    url: String,
}

/// The prospect's signed links: `manage` (see, move or cancel the tour) while the tour is ahead, `rate` (one link
/// per score, 1 to 5) in the thank-you.
#[derive(Serialize, Default)]
struct LinksView {
    manage: Option<String>,
    rate: Vec<RateLink>,
    /// In a staff alert: the leasing team's view of the tour.
    staff: Option<String>,
    /// In a staff alert email: "was this booking useful?", one link per score. Not in a chat alert: chat services
    /// open the links they are given to preview them, and a preview would be taken as the rating.
    staff_rate: Vec<RateLink>,
}

/// The weekly digest's words.
#[derive(Serialize)]
struct DigestView<'a> {
    property: PropertyView<'a>,
    week: String,
    figures: &'a super::analytics::TourMetrics,
    /// "92%", when anyone answered.
    staff_satisfaction: Option<String>,
    goal: String,
    tours: Vec<DigestTourView>,
    more_to_rate: usize,
}

#[derive(Serialize)]
struct DigestTourView {
    when: String,
    prospect: String,
    kind: &'static str,
    guide: Option<String>,
    status: &'static str,
    rate: Vec<RateLink>,
}

fn percent(share: f64) -> String {
    let percent = (share * 1000.0).round() / 10.0;
    if percent.fract() == 0.0 {
        format!("{percent:.0}%")
    } else {
        format!("{percent:.1}%")
    }
}

fn property_view(property: &Property) -> PropertyView<'_> {
    PropertyView {
        name: &property.name,
        address: &property.address,
        apply_url: property.apply_url.as_deref(),
        office_phone: property.office_phone.as_deref(),
        office_email: property.office_email.as_ref().map(|e| e.expose()),
    }
}

#[derive(Serialize)]
struct Context<'a> {
    kind: &'static str,
    property: PropertyView<'a>,
    prospect: ProspectView<'a>,
    tour: TourView<'a>,
    links: LinksView,
}

fn template_error(name: &str) -> impl Fn(minijinja::Error) -> RenderError + '_ {
    move |e| RenderError::Template {
        name: name.to_owned(),
        reason: e.to_string(),
    }
}

impl Templates {
    pub fn defaults() -> Result<Self, RenderError> {
        let mut env = minijinja::Environment::new();
        for (name, source) in DEFAULTS {
            env.add_template(name, source).map_err(template_error(name))?;
        }
        Ok(Self { env })
    }

    /// Whether a property's own version of a template may replace the default: it must name one of the default
    /// files and parse. (Names it uses that do not exist render as empty, as Jinja does.)
    pub fn check_override(name: &str, source: &str) -> Result<(), super::InvalidField> {
        if !DEFAULTS.iter().any(|(known, _)| *known == name) {
            return Err(super::InvalidField::new(
                "templates",
                format!("'{name}' is not one of the templates (see shared/core/templates/README.md)"),
            ));
        }
        let mut env = minijinja::Environment::new();
        env.add_template_owned(name.to_owned(), source.to_owned())
            .map(|_| ())
            .map_err(|e| super::InvalidField::new("templates", format!("{name}: {e}")))
    }

    /// The templates for a property: the defaults, with the property's own versions in their place.
    fn for_property(
        &self,
        property: &Property,
    ) -> Result<std::borrow::Cow<'_, minijinja::Environment<'static>>, RenderError> {
        if property.templates.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(&self.env));
        }
        let mut env = self.env.clone();
        for (name, source) in &property.templates {
            env.add_template_owned(name.clone(), source.clone())
                .map_err(template_error(name))?;
        }
        Ok(std::borrow::Cow::Owned(env))
    }

    /// The leasing team's weekly digest, to the property's staff addresses.
    pub fn render_digest(
        &self,
        digest: &super::digest::Digest,
        property: &Property,
        links: &Links,
    ) -> Result<Mail, RenderError> {
        let env = self.for_property(property)?;
        let view = DigestView {
            property: property_view(property),
            week: digest.week.in_words(),
            figures: &digest.figures,
            staff_satisfaction: digest.figures.staff_satisfaction.map(percent),
            goal: percent(digest.figures.staff_satisfaction_goal),
            tours: digest
                .to_rate
                .iter()
                .map(|tour| DigestTourView {
                    when: when_in_words(tour.start, property.time_zone),
                    prospect: tour.prospect_name.clone(),
                    kind: kind_in_words(tour.tour_type),
                    guide: property.guide_of(tour),
                    status: outcome_in_words(tour.status),
                    rate: links
                        .staff_rate(tour)
                        .into_iter()
                        .map(|(score, url)| RateLink { score, url })
                        .collect(),
                })
                .collect(),
            more_to_rate: digest.more_to_rate,
        };
        let to: Vec<String> = property
            .staff_notification_emails
            .iter()
            .map(|e| e.expose().to_owned())
            .collect();
        if to.is_empty() {
            return Err(RenderError::NoRecipient);
        }
        self.compose(
            &env,
            "digest",
            minijinja::Value::from(minijinja::value::Serde(view)),
            property,
            to,
            None,
        )
    }

    /// Renders `<file>.txt` (its `subject` and `body` blocks) and `<file>.html` into an email.
    fn compose(
        &self,
        env: &minijinja::Environment<'static>,
        file: &str,
        context: minijinja::Value,
        property: &Property,
        to: Vec<String>,
        invite: Option<Invite>,
    ) -> Result<Mail, RenderError> {
        let text_name = format!("{file}.txt");
        let mut captured = env
            .get_template(&text_name)
            .and_then(|t| t.render_captured(context.clone()))
            .map_err(template_error(&text_name))?;
        let (subject, text) = captured
            .with_state_mut(|state| {
                Ok::<_, minijinja::Error>((state.render_block("subject")?, state.render_block("body")?))
            })
            .map_err(template_error(&text_name))?;
        let html_name = format!("{file}.html");
        let html = env
            .get_template(&html_name)
            .and_then(|t| t.render(context))
            .map_err(template_error(&html_name))?;
        Ok(Mail {
            from_name: property.name.clone(),
            reply_to: property.office_email.as_ref().map(|e| e.expose().to_owned()),
            to,
            // A subject is one line.
            subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
            text: text.trim().to_owned() + "\n",
            html,
            invite,
        })
    }

    /// The email for a message of a tour as it now stands.
    pub fn render(
        &self,
        kind: MessageKind,
        tour: &TourRecord,
        property: &Property,
        links: &Links,
        now: DateTime<Utc>,
    ) -> Result<Mail, RenderError> {
        let env = self.for_property(property)?;
        let context = minijinja::Value::from(minijinja::value::Serde(context(kind, tour, property, links, now)));
        let file = match kind.audience() {
            Audience::Staff | Audience::StaffWebhook => "staff_alert",
            Audience::Prospect | Audience::Text => kind.as_str(),
        };
        let to = recipients(kind, tour, property);
        if to.is_empty() {
            return Err(RenderError::NoRecipient);
        }
        let invite = kind.invite_method().map(|method| Invite {
            method,
            ics: invite(tour, property, method, now),
        });
        self.compose(&env, file, context, property, to, invite)
    }
}

/// The links a message carries: the manage link in every prospect email about a tour still ahead, the rating links
/// in the thank-you.
fn links_for(kind: MessageKind, tour: &TourRecord, links: &Links, now: DateTime<Utc>) -> LinksView {
    let ahead = kind.audience() == Audience::Prospect && tour.status.is_open() && tour.start > now;
    let scores = |links: Vec<(u8, String)>| links.into_iter().map(|(score, url)| RateLink { score, url }).collect();
    let rates_booking = kind.audience() == Audience::Staff
        && !matches!(
            kind,
            MessageKind::StaffDisagrees | MessageKind::StaffUnconfirmed | MessageKind::StaffReply
        );
    LinksView {
        manage: ahead.then(|| links.manage(tour)),
        staff: (kind.audience() != Audience::Prospect).then(|| links.staff(tour)),
        rate: if kind == MessageKind::ThankYou {
            scores(links.rate(tour))
        } else {
            Vec::new()
        },
        staff_rate: if rates_booking {
            scores(links.staff_rate(tour))
        } else {
            Vec::new()
        },
    }
}

fn context<'a>(
    kind: MessageKind,
    tour: &'a TourRecord,
    property: &'a Property,
    links: &Links,
    now: DateTime<Utc>,
) -> Context<'a> {
    let config = property.tour_type(tour.tour_type).ok();
    let guide = property.guide_of(tour).unwrap_or_default();
    let first_name = tour
        .prospect_name
        .split_whitespace()
        .next()
        .unwrap_or(&tour.prospect_name);
    Context {
        // A webhook alert uses the email alert's words.
        kind: kind.alert().as_str(),
        property: property_view(property),
        prospect: ProspectView {
            first_name,
            name: &tour.prospect_name,
        },
        tour: TourView {
            id: tour.booking_id.as_str(),
            when: when_in_words(tour.start, property.time_zone),
            kind: kind_in_words(tour.tour_type),
            minutes: (tour.end - tour.start).num_minutes(),
            guide,
            confirmed: tour.status == super::lifecycle::TourStatus::Confirmed,
            cancel_in_resman: cancel_in_resman(tour, property),
            location: config
                .and_then(|c| c.location.clone())
                .or_else(|| (tour.tour_type != super::TourType::Virtual).then(|| property.address.clone())),
            virtual_link: config.and_then(|c| c.virtual_link.clone()),
            instructions: config.map(|c| c.instructions.clone()).filter(|i| !i.is_empty()),
            unit_preferences: tour.unit_preferences.as_deref(),
            special_requests: tour.special_requests.as_deref(),
            staff_notes: tour.staff_notes.as_deref(),
            outcomes: tour.disagreement.as_ref().map(|d| OutcomesView {
                ours: outcome_in_words(d.ours),
                resman: outcome_in_words(d.theirs),
            }),
            reply: tour.prospect_reply.as_ref().map(|r| r.words.as_str()),
        },
        links: links_for(kind, tour, links, now),
    }
}

/// The prospect for their messages; the assigned agent and the property's staff addresses for an alert.
fn recipients(kind: MessageKind, tour: &TourRecord, property: &Property) -> Vec<String> {
    match kind.audience() {
        Audience::Prospect => vec![tour.prospect_email.clone()],
        // A text is no email (see `domain::texts::wording`).
        Audience::Text => Vec::new(),
        Audience::StaffWebhook => property.staff_webhook_url.iter().cloned().collect(),
        Audience::Staff => {
            let agent = tour
                .holder
                .agent()
                .and_then(|a| property.agent(a))
                .and_then(|a| a.email.clone());
            let mut to: Vec<String> = agent.into_iter().collect();
            for staff in &property.staff_notification_emails {
                let staff = staff.expose().to_owned();
                if !to.iter().any(|t| t.eq_ignore_ascii_case(&staff)) {
                    to.push(staff);
                }
            }
            to
        }
    }
}

/// Text made inert for a chat service's markup: Slack (and Google Chat) read `<...>` as a mention or a link
/// (`<!channel>` pings everyone, `<https://x|label>` hides where a link goes), so a prospect's words must not carry
/// them. `&`, `<` and `>` become entities, which those services show as the characters.
pub fn chat_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            other => out.push(other),
        }
    }
    out
}

/// A staff alert as a chat channel's incoming webhook takes it: `text` (what Slack, Google Chat and Teams workflows
/// show: the alert email's subject and body) beside the tour's fields for a receiver that reads them.
pub fn webhook_alert(
    kind: MessageKind,
    email: &Mail,
    tour: &TourRecord,
    property: &Property,
    links: &Links,
) -> serde_json::Value {
    let guide = property.guide_of(tour);
    serde_json::json!({
        "text": chat_escaped(&format!("{}\n\n{}", email.subject, email.text.trim_end())),
        "alert": kind.alert().as_str(),
        "url": links.staff(tour),
        "tour": {
            "appointment_id": tour.booking_id.as_str(),
            "resman_appointment_id": tour.resman_appointment_id.as_ref().map(ToString::to_string),
            "property_id": tour.property_id.to_string(),
            "status": tour.status.as_str(),
            "tour_type": tour.tour_type.as_str(),
            "start": tour.start.with_timezone(&property.time_zone).to_rfc3339(),
            "when": when_in_words(tour.start, property.time_zone),
            "duration": (tour.end - tour.start).num_minutes(),
            "staff_member": guide,
            "prospect_name": tour.prospect_name,
            "unit_preferences": tour.unit_preferences,
            "special_requests": tour.special_requests,
        },
    })
}

/// The tour's calendar invite: one `VEVENT` whose `UID` is the tour's for its whole life, `SEQUENCE` its version
/// (so a move or a cancellation replaces the event in the prospect's calendar), start and end in UTC, and an alarm
/// an hour before.
pub fn invite(tour: &TourRecord, property: &Property, method: &'static str, now: DateTime<Utc>) -> String {
    let summary = format!("Tour of {}", property.name);
    let guide = tour
        .holder
        .agent()
        .and_then(|a| property.agent(a))
        .map(|a| format!(" with {}", a.name))
        .unwrap_or_default();
    let location = property
        .tour_type(tour.tour_type)
        .ok()
        .and_then(|c| c.location.clone().or_else(|| c.virtual_link.clone()))
        .unwrap_or_else(|| property.address.clone());
    let mut event = icalendar::Event::new();
    event
        .uid(&format!("{}@tour-booking", tour.booking_id))
        .sequence(u32::try_from(tour.version).unwrap_or(u32::MAX))
        .timestamp(now)
        .starts(tour.start)
        .ends(tour.end)
        .summary(&summary)
        .description(&format!(
            "{}{guide}. {}",
            when_in_words(tour.start, property.time_zone),
            property.address
        ))
        .location(&location);
    if method == "CANCEL" {
        event.status(EventStatus::Cancelled);
    } else {
        event.status(EventStatus::Confirmed).alarm(Alarm::display(
            &format!("{summary} in an hour"),
            Trigger::before_start(Duration::hours(1)),
        ));
    }
    let mut calendar = Calendar::new();
    calendar
        .append_property(IcalProperty::new("METHOD", method))
        .push(event.done());
    calendar.done().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::TourStatus;
    use crate::domain::property::tests::demo;
    use crate::domain::update::tests::tour;

    fn now() -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 30, 15, 0, 0).unwrap()
    }

    /// The demo property with some settings changed.
    fn with(settings: &[(&str, serde_json::Value)]) -> Property {
        let mut json = crate::domain::property::tests::demo_json();
        for (name, value) in settings {
            json[*name] = value.clone();
        }
        Property::from_file(serde_json::from_value(json).unwrap()).unwrap()
    }

    /// The `href`s of an HTML part, unescaped as a mail client reads them.
    fn hrefs(html: &str) -> Vec<String> {
        html.split("href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(|h| h.replace("&#x2f;", "/").replace("&amp;", "&"))
            .collect()
    }

    fn links() -> Links {
        Links::new("https://tours.example/tour", crate::domain::link::tests::key()).unwrap()
    }

    fn demo_tour(status: TourStatus) -> TourRecord {
        let mut t = tour(status);
        t.holder = crate::domain::record::Holder::Agent(demo().agents[0].id.clone());
        t
    }

    #[test]
    fn a_confirmation_names_the_time_in_the_propertys_zone_the_guide_and_the_office_in_both_parts() {
        let templates = Templates::defaults().unwrap();
        let t = demo_tour(TourStatus::Scheduled);
        let email = templates
            .render(MessageKind::Confirmation, &t, &demo(), &links(), now())
            .unwrap();
        assert_eq!(email.to, ["ana@example.com"]);
        let when = when_in_words(t.start, demo().time_zone);
        assert!(when.ends_with("Central Time"), "{when}");
        assert_eq!(email.subject, format!("Your tour of {}: {when}", demo().name));
        for part in [&email.text, &email.html] {
            assert!(part.contains(&when), "{part}");
            assert!(part.contains(&demo().agents[0].name), "{part}");
            assert!(part.contains("Hi Ana"), "{part}");
        }
        assert!(email.html.contains("<strong>"), "an HTML part");
        assert!(!email.text.contains('<'), "a plain-text part");
        assert_eq!(email.invite.unwrap().method, "REQUEST");
    }

    #[test]
    fn the_invite_keeps_the_uid_raises_the_sequence_and_a_cancellation_withdraws_it() {
        let property = demo();
        let mut t = demo_tour(TourStatus::Scheduled);
        let first = invite(&t, &property, "REQUEST", now());
        t.version = 3;
        t.status = TourStatus::Cancelled;
        let cancel = invite(&t, &property, "CANCEL", now());
        let parse = |ics: &str| ics.parse::<Calendar>().unwrap();
        let (a, b) = (parse(&first), parse(&cancel));
        let (ea, eb) = (a.events().next().unwrap(), b.events().next().unwrap());
        assert_eq!(ea.get_uid(), eb.get_uid());
        assert_eq!((ea.get_sequence(), eb.get_sequence()), (Some(1), Some(3)));
        assert_eq!(a.property_value("METHOD"), Some("REQUEST"));
        assert_eq!(b.property_value("METHOD"), Some("CANCEL"));
        assert!(cancel.contains("STATUS:CANCELLED"));
        assert!(first.contains("BEGIN:VALARM"));
        assert_eq!(
            ea.get_start(),
            Some(icalendar::DatePerhapsTime::DateTime(icalendar::CalendarDateTime::Utc(
                t.start
            )))
        );
    }

    #[test]
    fn every_message_renders_from_the_default_templates() {
        let templates = Templates::defaults().unwrap();
        let t = demo_tour(TourStatus::Scheduled);
        let property = with(&[("staff_webhook_url", "https://hooks.chat.example/T1".into())]);
        for kind in MessageKind::ALL {
            if kind.audience() == Audience::Text {
                let text = templates.render(kind, &t, &property, &links(), now());
                assert!(
                    matches!(text, Err(RenderError::NoRecipient)),
                    "a text is no email: {kind:?}"
                );
                continue;
            }
            let email = templates.render(kind, &t, &property, &links(), now()).unwrap();
            assert!(
                !email.subject.is_empty() && email.text.contains(&t.prospect_name[..3])
                    || kind.audience() != Audience::Prospect,
                "{kind:?}"
            );
            assert!(email.html.starts_with("<!doctype html>"), "{kind:?}");
        }
    }

    #[test]
    fn the_thank_you_offers_the_propertys_application_link() {
        let templates = Templates::defaults().unwrap();
        let mut json = crate::domain::property::tests::demo_json();
        json["apply_url"] = "https://maplegrove.example/apply".into();
        let property = Property::from_file(serde_json::from_value(json).unwrap()).unwrap();
        let email = templates
            .render(
                MessageKind::ThankYou,
                &demo_tour(TourStatus::Completed),
                &property,
                &links(),
                now(),
            )
            .unwrap();
        assert!(
            email.text.contains("apply online at https://maplegrove.example/apply"),
            "{}",
            email.text
        );
        // The HTML part escapes the address as HTML does (`/` as `&#x2f;`), which a mail client reads back as is.
        let href = email
            .html
            .split("<a href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        assert_eq!(href.replace("&#x2f;", "/"), "https://maplegrove.example/apply");
        let mut bad = crate::domain::property::tests::demo_json();
        bad["apply_url"] = "http://plain.example".into();
        let refused = Property::from_file(serde_json::from_value(bad).unwrap()).unwrap_err();
        assert_eq!(refused.field, "apply_url");
    }

    #[test]
    fn a_staff_alert_goes_to_the_agent_and_the_staff_addresses_with_what_the_prospect_asked_for() {
        let templates = Templates::defaults().unwrap();
        let mut t = demo_tour(TourStatus::Scheduled);
        t.unit_preferences = Some("2 bedrooms; ground floor".into());
        let email = templates
            .render(MessageKind::StaffNew, &t, &demo(), &links(), now())
            .unwrap();
        assert!(email.subject.starts_with("New tour: Ana Lopez, "), "{}", email.subject);
        assert!(email.text.contains("2 bedrooms; ground floor") && email.text.contains(t.booking_id.as_str()));
        assert_eq!(email.invite, None);
        assert!(email.to.iter().any(|t| t == "leasing@maplegrove.example"));
    }

    #[test]
    fn a_staff_alert_email_asks_whether_the_booking_was_useful_and_its_chat_twin_does_not() {
        let templates = Templates::defaults().unwrap();
        let t = demo_tour(TourStatus::Scheduled);
        let rate = links().staff_rate(&t);
        for kind in [
            MessageKind::StaffNew,
            MessageKind::StaffMoved,
            MessageKind::StaffCancelled,
            MessageKind::StaffFollowUp,
        ] {
            let email = templates.render(kind, &t, &demo(), &links(), now()).unwrap();
            assert!(
                email.text.contains("Was this booking useful?"),
                "{kind:?}: {}",
                email.text
            );
            for (score, url) in &rate {
                assert!(
                    email.text.contains(&format!("{score}: {url}")),
                    "{kind:?}: {}",
                    email.text
                );
                let (_, query) = url.split_once("staff-rate").unwrap();
                assert!(
                    email.html.contains(&query.replace('&', "&amp;")),
                    "{kind:?}: {}",
                    email.html
                );
            }
        }
        // The chat twin: a chat service previews the links it is given, which would rate the booking.
        let mut chatty = demo();
        chatty.staff_webhook_url = Some("https://hooks.example/leasing".into());
        let chat = templates
            .render(MessageKind::WebhookNew, &t, &chatty, &links(), now())
            .unwrap();
        assert!(!chat.text.contains("Was this booking useful?") && !chat.text.contains("staff-rate"));
        // Asking staff to settle an outcome is not about the booking.
        let mut settle = demo_tour(TourStatus::Completed);
        settle.disagreement = Some(crate::domain::reconcile::Disagreement {
            ours: TourStatus::Completed,
            theirs: TourStatus::NoShow,
            since: now(),
            reported_by: crate::domain::lifecycle::ChangeSource::ResmanPoll,
        });
        let email = templates
            .render(MessageKind::StaffDisagrees, &settle, &demo(), &links(), now())
            .unwrap();
        assert!(!email.text.contains("staff-rate"));
    }

    #[test]
    fn the_weekly_digest_gives_the_weeks_figures_and_a_rating_link_per_unrated_tour_to_the_staff_addresses() {
        use crate::domain::analytics::Facts;
        use crate::domain::digest::{DigestWeek, digest};
        let templates = Templates::defaults().unwrap();
        let t = demo_tour(TourStatus::Completed);
        let facts = Facts {
            tours_by_start: vec![t.clone()],
            tours_by_booking: vec![t.clone()],
            ..Facts::default()
        };
        let week = DigestWeek::of(t.start.with_timezone(&demo().time_zone).date_naive());
        let d = digest(&demo(), week, &facts, t.end).unwrap();
        let email = templates.render_digest(&d, &demo(), &links()).unwrap();
        assert!(
            email.subject.starts_with(&format!("Your week at {}: ", demo().name)),
            "{}",
            email.subject
        );
        assert_eq!(email.to, vec!["leasing@maplegrove.example".to_owned()]);
        assert!(email.text.contains("Tours held:        1"), "{}", email.text);
        assert!(
            email.text.contains("no answers yet; the goal is above 90%"),
            "{}",
            email.text
        );
        assert!(email.text.contains("Ana Lopez"), "{}", email.text);
        for (score, url) in links().staff_rate(&t) {
            assert!(email.text.contains(&format!("{score}: {url}")), "{}", email.text);
        }
        assert!(email.html.contains("staff-rate?t="), "{}", email.html);
        assert_eq!(email.invite, None);
        // A property without staff addresses has nobody to send it to.
        let mut nobody = demo();
        nobody.staff_notification_emails.clear();
        assert!(matches!(
            templates.render_digest(&d, &nobody, &links()),
            Err(RenderError::NoRecipient)
        ));
    }

    #[test]
    fn a_cancellation_resman_still_shows_asks_staff_to_cancel_the_appointment_there() {
        let templates = Templates::defaults().unwrap();
        let mut t = demo_tour(TourStatus::Cancelled);
        t.resman_appointment_id = Some(crate::domain::AppointmentId::parse("EV-7").unwrap());
        t.resman_seen = Some(crate::domain::reconcile::Holding {
            status: TourStatus::Scheduled,
            ..t.holding()
        });
        let alert = |property: &Property, t: &TourRecord| {
            templates
                .render(MessageKind::StaffCancelled, t, property, &links(), now())
                .unwrap()
        };
        let asked = "please mark appointment EV-7 cancelled in ResMan";
        let email = alert(&demo(), &t);
        assert!(
            email.text.contains(asked) && email.html.contains(asked),
            "{}",
            email.text
        );
        assert!(email.text.contains("the guide's time stays blocked"), "{}", email.text);
        // Staff already cancelled it in ResMan, or the property writes the cancel word: the time is free.
        let mut gone = t.clone();
        gone.resman_seen = Some(crate::domain::reconcile::Holding {
            status: TourStatus::Cancelled,
            ..t.holding()
        });
        let mut worded = demo();
        worded.resman_cancel_word = true;
        for email in [alert(&demo(), &gone), alert(&worded, &t)] {
            assert!(!email.text.contains(asked), "{}", email.text);
            assert!(email.text.contains("the time is free again"), "{}", email.text);
        }
    }

    #[test]
    fn staff_are_asked_which_outcome_holds_when_resman_records_another() {
        let templates = Templates::defaults().unwrap();
        let mut t = demo_tour(TourStatus::Completed);
        t.disagreement = Some(crate::domain::reconcile::Disagreement {
            ours: TourStatus::Completed,
            theirs: TourStatus::NoShow,
            since: now(),
            reported_by: crate::domain::lifecycle::ChangeSource::ResmanPoll,
        });
        let email = templates
            .render(MessageKind::StaffDisagrees, &t, &demo(), &links(), now())
            .unwrap();
        assert!(
            email.subject.starts_with("Please say how this tour ended: Ana Lopez, "),
            "{}",
            email.subject
        );
        assert!(
            email
                .text
                .contains("ResMan says the prospect did not come, the chatbot's record says the tour took place"),
            "{}",
            email.text
        );
        assert!(email.html.contains("ResMan says the prospect did not come"));
        assert!(email.to.iter().any(|t| t == "leasing@maplegrove.example"));
        assert!(MessageKind::StaffDisagrees.fits(&t));
        t.disagreement = None;
        assert!(
            !MessageKind::StaffDisagrees.fits(&t),
            "not sent once staff have settled it"
        );
    }

    #[test]
    fn every_email_about_a_tour_ahead_carries_a_signed_link_to_change_it_and_the_thank_you_carries_ratings() {
        use crate::domain::link::{LinkPurpose, LinkToken};
        let templates = Templates::defaults().unwrap();
        let t = demo_tour(TourStatus::Scheduled);
        let manage = links().manage(&t);
        for kind in [
            MessageKind::Confirmation,
            MessageKind::Confirmed,
            MessageKind::Rescheduled,
            MessageKind::Reminder,
            MessageKind::LastReminder,
        ] {
            let email = templates.render(kind, &t, &demo(), &links(), now()).unwrap();
            assert!(email.text.contains(&manage), "{kind:?}: {}", email.text);
            assert!(hrefs(&email.html).contains(&manage), "{kind:?}");
        }
        let raw = manage.split("?t=").nth(1).unwrap();
        let token = LinkToken::verify(raw, LinkPurpose::Manage, &crate::domain::link::tests::key(), now()).unwrap();
        assert_eq!(token.booking_id, t.booking_id);
        // Nothing left to change: no link.
        let cancelled = demo_tour(TourStatus::Cancelled);
        let email = templates
            .render(MessageKind::Cancelled, &cancelled, &demo(), &links(), now())
            .unwrap();
        assert!(!email.text.contains("?t=") && !email.html.contains("?t="));
        let staff = templates
            .render(MessageKind::StaffNew, &t, &demo(), &links(), now())
            .unwrap();
        assert!(
            !staff.text.contains(&manage),
            "a staff alert cannot act for the prospect"
        );
        assert!(
            staff.text.contains(&links().staff(&t)),
            "but links to the tour: {}",
            staff.text
        );
        let done = demo_tour(TourStatus::Completed);
        let thanks = templates
            .render(MessageKind::ThankYou, &done, &demo(), &links(), now())
            .unwrap();
        let rate = links().rate(&done);
        for (score, url) in &rate {
            assert!(thanks.text.contains(&format!("{score}: {url}")), "{}", thanks.text);
            assert!(hrefs(&thanks.html).contains(url));
        }
        assert!(!thanks.text.contains("/tour?t="), "no manage link after the tour");
    }

    #[test]
    fn a_property_may_replace_a_template_and_a_broken_or_unknown_one_is_refused_at_load() {
        let templates = Templates::defaults().unwrap();
        let mut own = std::collections::BTreeMap::new();
        own.insert(
            "confirmation.txt".to_owned(),
            "{% block subject %}See you at {{ property.name }}!{% endblock %}{% block body %}Howdy {{ prospect.first_name }}.{% endblock %}"
                .to_owned(),
        );
        let property = with(&[("templates", serde_json::to_value(&own).unwrap())]);
        let t = demo_tour(TourStatus::Scheduled);
        let email = templates
            .render(MessageKind::Confirmation, &t, &property, &links(), now())
            .unwrap();
        assert_eq!(email.subject, format!("See you at {}!", property.name));
        assert_eq!(email.text, "Howdy Ana.\n");
        assert!(email.html.contains("Hi Ana"), "the HTML part keeps the default");
        let other = templates
            .render(MessageKind::Confirmation, &t, &demo(), &links(), now())
            .unwrap();
        assert!(other.text.starts_with("Hi Ana"), "another property keeps the defaults");
        for (name, source, says) in [
            (
                "confirmation.txt",
                "{% block body %}{{ unclosed {% endblock %}",
                "confirmation.txt",
            ),
            ("welcome.txt", "hi", "is not one of the templates"),
        ] {
            let mut json = crate::domain::property::tests::demo_json();
            json["templates"] = serde_json::json!({ name: source });
            let refused = Property::from_file(serde_json::from_value(json).unwrap()).unwrap_err();
            assert_eq!(refused.field, "templates");
            assert!(refused.to_string().contains(says), "{refused}");
        }
    }

    #[test]
    fn a_webhook_alert_carries_the_alert_emails_words_and_the_tours_fields() {
        let templates = Templates::defaults().unwrap();
        let property = with(&[("staff_webhook_url", "https://hooks.chat.example/T1".into())]);
        let mut t = demo_tour(TourStatus::Scheduled);
        t.special_requests = Some("wheelchair access".into());
        let email = templates
            .render(MessageKind::WebhookMoved, &t, &property, &links(), now())
            .unwrap();
        assert_eq!(email.to, ["https://hooks.chat.example/T1"]);
        let body = webhook_alert(MessageKind::WebhookMoved, &email, &t, &property, &links());
        assert_eq!(body["url"], links().staff(&t));
        assert!(
            body["text"].as_str().unwrap().contains(&links().staff(&t)),
            "the words carry the link too"
        );
        assert_eq!(body["alert"], "staff_moved");
        let text = body["text"].as_str().unwrap();
        assert!(text.starts_with("Tour moved: Ana Lopez, "), "{text}");
        assert!(text.contains("wheelchair access") && text.contains(&when_in_words(t.start, property.time_zone)));
        assert_eq!(body["tour"]["appointment_id"], t.booking_id.as_str());
        assert_eq!(body["tour"]["special_requests"], "wheelchair access");
        assert_eq!(body["tour"]["staff_member"], property.agents[0].name.as_str());
        assert!(
            templates
                .render(MessageKind::WebhookMoved, &t, &demo(), &links(), now())
                .is_err(),
            "no webhook configured: nobody to send it to"
        );
    }

    #[test]
    fn a_prospects_words_cannot_ping_a_channel_or_disguise_a_link_in_a_chat_alert() {
        let templates = Templates::defaults().unwrap();
        let property = with(&[("staff_webhook_url", "https://hooks.chat.example/T1".into())]);
        let mut t = demo_tour(TourStatus::Scheduled);
        t.special_requests = Some("<!channel> see <https://evil.example|our site> & more".into());
        let email = templates
            .render(MessageKind::WebhookMoved, &t, &property, &links(), now())
            .unwrap();
        let body = webhook_alert(MessageKind::WebhookMoved, &email, &t, &property, &links());
        let text = body["text"].as_str().unwrap();
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert!(
            text.contains("&lt;!channel&gt; see &lt;https://evil.example|our site&gt; &amp; more"),
            "{text}"
        );
        assert_eq!(
            body["tour"]["special_requests"], "<!channel> see <https://evil.example|our site> & more",
            "the field itself is data, kept as written"
        );
    }
}
