//! The prospect's self-service page, reached through the signed links in their emails: see the tour, move it to
//! one of the free times shown, or cancel it, through the same use case as the chatbot's `PUT` (the same rules, the
//! same slot race with one winner, the same messages and ResMan writes); and, after the tour, rate it once.
//!
//! A link is refused when it was not made with our key, has expired (a manage link at the tour's start), names a
//! tour that is cancelled or over, or was used: a change made through a link uses every link written before it,
//! and the email about that change carries fresh ones. The "used" rule is checked on the tour as the change reads
//! it, so two clicks racing with one link make one change.

use super::AppError;
use super::availability::load_property;
use super::availability::nearest_free;
use super::booking::find_tour;
use super::lifecycle::{UpdateDeps, change_tour_if};
use crate::domain::InvalidField;
use crate::domain::lifecycle::ChangeSource;
use crate::domain::link::{LinkKey, LinkProblem, LinkPurpose, LinkToken, Rating, Score, StaffIssue, StaffRating};
use crate::domain::notify::{kind_in_words, when_in_words};
use crate::domain::property::Property;
use crate::domain::update::UpdateTourCommand;
use crate::domain::{lifecycle::TourStatus, record::TourRecord};
use crate::ports::{MessageStore, Rated, RatingStore, StaffRated, StaffRatingStore};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// How many free times the page offers.
pub const TIMES_OFFERED: usize = 8;

pub struct SelfServiceDeps<'a> {
    pub update: UpdateDeps<'a>,
    pub ratings: &'a dyn RatingStore,
    pub staff_ratings: &'a dyn StaffRatingStore,
    /// The tour's deliveries, for the staff view.
    pub messages: &'a dyn MessageStore,
    pub key: &'a LinkKey,
}

/// The tour as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TourSummary {
    pub property: String,
    pub address: String,
    pub office_phone: Option<String>,
    pub office_email: Option<String>,
    pub when: String,
    pub kind: &'static str,
    pub guide: Option<String>,
    pub status: &'static str,
}

/// A free time the prospect may pick: `start` is what the form sends back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeChoice {
    pub start: String,
    pub when: String,
    pub guide: Option<String>,
}

/// What the page shows (the edge picks its status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "page", rename_all = "snake_case")]
pub enum Page {
    /// The tour, the free times near it, and the buttons.
    Manage {
        tour: TourSummary,
        times: Vec<TimeChoice>,
        token: String,
    },
    /// Moved: the tour at its new time.
    Moved { tour: TourSummary },
    /// Cancelled.
    Cancelled { tour: TourSummary },
    /// The time picked was taken a moment before: the free times now.
    Taken {
        tour: TourSummary,
        times: Vec<TimeChoice>,
        token: String,
    },
    /// The rating, recorded now or before.
    Rated { property: String, score: u8, first: bool },
    /// The leasing team's rating of the booking, recorded now or before, and the short list of what went
    /// wrong until they have said.
    StaffRated {
        tour: TourSummary,
        score: u8,
        first: bool,
        token: String,
        /// The list to pick from; empty once they said.
        choices: Vec<IssueChoice>,
        /// What they said went wrong, in words.
        went_wrong: Vec<&'static str>,
    },
    /// The leasing team's read-only view of a tour (the link in a staff alert).
    Staff {
        tour: TourSummary,
        prospect: StaffProspect,
        history: Vec<StaffLine>,
        messages: Vec<StaffLine>,
    },
    /// The link does not allow it; the tour when the link was ours.
    Refused {
        reason: &'static str,
        message: String,
        tour: Option<TourSummary>,
    },
}

/// Who the tour is for and what they asked, as the staff view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffProspect {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub unit_preferences: Option<String>,
    pub special_requests: Option<String>,
    /// "in ResMan as EV-123", "waiting for ResMan", ...
    pub in_resman: String,
}

/// One reason on the staff rating's list: the form's value and its words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueChoice {
    pub value: &'static str,
    pub words: &'static str,
}

/// One line of the staff view's history or messages: when, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaffLine {
    pub when: String,
    pub what: String,
}

/// What the page's form asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Move { start: DateTime<Utc> },
    Cancel,
}

impl Action {
    /// From the form's fields: `action=cancel`, or `action=move` with `start` (one of the times offered).
    pub fn from_form(fields: &[(String, String)]) -> Result<Self, InvalidField> {
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
        match field("action") {
            Some("cancel") => Ok(Self::Cancel),
            Some("move") => {
                let raw = field("start").ok_or_else(|| InvalidField::new("start", "pick one of the times"))?;
                let start = DateTime::parse_from_rfc3339(raw)
                    .map_err(|_| InvalidField::new("start", "is not one of the times offered"))?;
                Ok(Self::Move {
                    start: start.with_timezone(&Utc),
                })
            }
            _ => Err(InvalidField::new("action", "must be move or cancel")),
        }
    }

    fn command(&self) -> Result<UpdateTourCommand, InvalidField> {
        let body = match self {
            Self::Move { start } => serde_json::json!({ "rescheduled_datetime": start.to_rfc3339() }),
            Self::Cancel => serde_json::json!({ "status": "cancelled" }),
        };
        UpdateTourCommand::from_body(body.to_string().as_bytes())
    }
}

fn summary(property: &Property, tour: &TourRecord) -> TourSummary {
    TourSummary {
        property: property.name.clone(),
        address: property.address.clone(),
        office_phone: property.office_phone.clone(),
        office_email: property.office_email.as_ref().map(|e| e.expose().to_owned()),
        when: when_in_words(tour.start, property.time_zone),
        kind: kind_in_words(tour.tour_type),
        guide: property.guide_of(tour),
        status: tour.status.as_str(),
    }
}

/// Whether a manage link still allows a change of the tour as it now stands.
fn still_manageable(token: &LinkToken, tour: &TourRecord, now: DateTime<Utc>) -> Result<(), LinkProblem> {
    match tour.status {
        TourStatus::Cancelled | TourStatus::Released => Err(LinkProblem::Cancelled),
        status if !status.is_open() => Err(LinkProblem::Over),
        // Moved earlier since the email: the link ends with the tour's actual start.
        _ if now >= tour.start => Err(LinkProblem::Expired),
        _ if token.used_by(tour) => Err(LinkProblem::Used),
        _ => Ok(()),
    }
}

/// The token's tour, and the property; a refusal page when the link is not ours or no longer fits.
async fn open(
    deps: &SelfServiceDeps<'_>,
    raw: &str,
    purpose: LinkPurpose,
    now: DateTime<Utc>,
) -> Result<Result<(LinkToken, TourRecord, Property), Page>, AppError> {
    let refused = |problem: LinkProblem, tour: Option<TourSummary>| Page::Refused {
        reason: problem.as_str(),
        message: problem.to_string(),
        tour,
    };
    let token = match LinkToken::verify(raw, purpose, deps.key, now) {
        Ok(token) => token,
        Err(problem) => return Ok(Err(refused(problem, None))),
    };
    let tour = match find_tour(deps.update.tours, token.booking_id.as_str()).await {
        Ok(tour) => tour,
        // Signed by us for a tour that is gone (erased on request): nothing to show.
        Err(AppError::NotFound(_)) => return Ok(Err(refused(LinkProblem::Over, None))),
        Err(e) => return Err(e),
    };
    let property = load_property(deps.update.properties, &tour.property_id).await?;
    Ok(Ok((token, tour, property)))
}

async fn free_times(
    deps: &SelfServiceDeps<'_>,
    property: &Property,
    tour: &TourRecord,
    now: DateTime<Utc>,
) -> Result<Vec<TimeChoice>, AppError> {
    let near = nearest_free(
        deps.update.calendar,
        property,
        tour.tour_type,
        &tour.window(),
        now,
        TIMES_OFFERED,
    )
    .await?;
    Ok(near
        .iter()
        // Where it is now is no choice (another agent may be free then, but the prospect keeps theirs).
        .filter(|slot| slot.start.with_timezone(&Utc) != tour.start)
        .map(|slot| TimeChoice {
            start: slot.start.with_timezone(&Utc).to_rfc3339(),
            when: when_in_words(slot.start.with_timezone(&Utc), property.time_zone),
            guide: slot
                .agent
                .as_ref()
                .and_then(|a| property.agent(a))
                .map(|a| a.name.clone()),
        })
        .collect())
}

/// `GET` of a manage link: the tour and the free times near it.
pub async fn manage_page(deps: &SelfServiceDeps<'_>, raw: &str, now: DateTime<Utc>) -> Result<Page, AppError> {
    let (token, tour, property) = match open(deps, raw, LinkPurpose::Manage, now).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    if let Err(problem) = still_manageable(&token, &tour, now) {
        return Ok(Page::Refused {
            reason: problem.as_str(),
            message: problem.to_string(),
            tour: Some(summary(&property, &tour)),
        });
    }
    Ok(Page::Manage {
        times: free_times(deps, &property, &tour, now).await?,
        tour: summary(&property, &tour),
        token: raw.trim().to_owned(),
    })
}

/// `POST` of the page's form: the move or the cancellation, through the chatbot's use case.
pub async fn act(deps: &SelfServiceDeps<'_>, raw: &str, action: &Action, now: DateTime<Utc>) -> Result<Page, AppError> {
    let (token, tour, property) = match open(deps, raw, LinkPurpose::Manage, now).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let command = action.command()?;
    let guard = |current: &TourRecord| still_manageable(&token, current, now).map_err(AppError::Link);
    let changed = change_tour_if(
        &deps.update,
        tour.booking_id.as_str(),
        &command,
        None,
        ChangeSource::ProspectLink,
        &guard,
        now,
    )
    .await;
    match changed {
        Ok(_) => {
            let after = find_tour(deps.update.tours, tour.booking_id.as_str()).await?;
            tracing::info!(booking_id = %after.booking_id, version = after.version, status = after.status.as_str(), "tour changed through the prospect's link");
            let tour = summary(&property, &after);
            Ok(match action {
                Action::Move { .. } => Page::Moved { tour },
                Action::Cancel => Page::Cancelled { tour },
            })
        }
        Err(AppError::SlotTaken { .. }) => {
            let current = find_tour(deps.update.tours, tour.booking_id.as_str()).await?;
            Ok(Page::Taken {
                times: free_times(deps, &property, &current, now).await?,
                tour: summary(&property, &current),
                token: raw.trim().to_owned(),
            })
        }
        Err(AppError::Link(problem)) => {
            let current = find_tour(deps.update.tours, tour.booking_id.as_str()).await?;
            Ok(Page::Refused {
                reason: problem.as_str(),
                message: problem.to_string(),
                tour: Some(summary(&property, &current)),
            })
        }
        Err(e) => Err(e),
    }
}

/// A staff alert's link: the tour as it now stands, with its history and its messages. Read-only: staff change
/// tours in ResMan.
pub async fn staff_page(deps: &SelfServiceDeps<'_>, raw: &str, now: DateTime<Utc>) -> Result<Page, AppError> {
    let refused = |problem: LinkProblem| Page::Refused {
        reason: problem.as_str(),
        message: problem.to_string(),
        tour: None,
    };
    let token = match LinkToken::verify(raw, LinkPurpose::Staff, deps.key, now) {
        Ok(token) => token,
        Err(problem) => return Ok(refused(problem)),
    };
    let Some((tour, deliveries)) = deps.messages.tour_with_messages(&token.booking_id).await? else {
        return Ok(refused(LinkProblem::Over));
    };
    let property = load_property(deps.update.properties, &tour.property_id).await?;
    let at = |moment: DateTime<Utc>| when_in_words(moment, property.time_zone);
    let in_resman = match (&tour.resman_appointment_id, tour.sync_status) {
        (_, crate::domain::record::SyncStatus::Rejected) => "refused by ResMan".to_owned(),
        (Some(id), _) if !tour.owes_resman() => format!("in ResMan as appointment {id}"),
        (Some(id), _) => format!("in ResMan as appointment {id}; the latest change is on its way there"),
        (None, _) => "on its way to ResMan".to_owned(),
    };
    Ok(Page::Staff {
        prospect: StaffProspect {
            name: tour.prospect_name.clone(),
            email: tour.prospect_email.clone(),
            phone: tour.prospect_phone.clone(),
            unit_preferences: tour.unit_preferences.clone(),
            special_requests: tour.special_requests.clone(),
            in_resman,
        },
        history: tour
            .history
            .iter()
            .map(|h| StaffLine {
                when: at(h.at),
                what: format!(
                    "{} for {}, by {}",
                    h.status.as_str(),
                    at(h.start),
                    source_in_words(h.source)
                ),
            })
            .collect(),
        messages: deliveries
            .iter()
            .map(|d| StaffLine {
                when: at(d.sent_at.unwrap_or(d.created_at)),
                what: format!(
                    "{}: {}",
                    d.message.as_str().replace('_', " "),
                    serde_json::to_value(d.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
            })
            .collect(),
        tour: summary(&property, &tour),
    })
}

fn source_in_words(source: ChangeSource) -> &'static str {
    match source {
        ChangeSource::Chatbot => "the chatbot",
        ChangeSource::ResmanWebhook | ChangeSource::ResmanPoll => "staff in ResMan",
        ChangeSource::StaffApi => "staff",
        ChangeSource::ProspectLink => "the prospect, through their email's link",
        ChangeSource::ProspectText => "the prospect, by text",
    }
}

/// A rating link's click: the score, recorded once per tour.
pub async fn rate(deps: &SelfServiceDeps<'_>, raw: &str, score: &str, now: DateTime<Utc>) -> Result<Page, AppError> {
    let score = Score::parse(score)?;
    let (_, tour, property) = match open(deps, raw, LinkPurpose::Rate, now).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    if tour.status != TourStatus::Completed {
        return Ok(Page::Refused {
            reason: LinkProblem::Over.as_str(),
            message: "only a tour that took place can be rated".to_owned(),
            tour: Some(summary(&property, &tour)),
        });
    }
    let rated = deps.ratings.record_rating(&tour, Rating { score, at: now }).await?;
    Ok(match rated {
        Rated::Recorded => {
            tracing::info!(booking_id = %tour.booking_id, score = score.get(), "tour rated");
            Page::Rated {
                property: property.name,
                score: score.get(),
                first: true,
            }
        }
        Rated::Already(first) => Page::Rated {
            property: property.name,
            score: first.score.get(),
            first: false,
        },
    })
}

/// The staff rating page for a booking rated now or before.
fn staff_rated(property: &Property, tour: &TourRecord, rating: &StaffRating, first: bool, raw: &str) -> Page {
    let said = !rating.went_wrong.is_empty();
    Page::StaffRated {
        tour: summary(property, tour),
        score: rating.score.get(),
        first,
        token: raw.trim().to_owned(),
        choices: if said {
            Vec::new()
        } else {
            StaffIssue::ALL
                .iter()
                .map(|i| IssueChoice {
                    value: i.as_str(),
                    words: i.in_words(),
                })
                .collect()
        },
        went_wrong: rating.went_wrong.iter().map(|i| i.in_words()).collect(),
    }
}

/// A staff rating link's click ("was this booking useful?"): the score, recorded once per tour whatever its
/// state (a booking that went wrong is worth a rating most of all).
pub async fn staff_rate(
    deps: &SelfServiceDeps<'_>,
    raw: &str,
    score: &str,
    now: DateTime<Utc>,
) -> Result<Page, AppError> {
    let score = Score::parse(score)?;
    let (_, tour, property) = match open(deps, raw, LinkPurpose::StaffRate, now).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    let rating = StaffRating {
        score,
        at: now,
        went_wrong: Vec::new(),
    };
    Ok(match deps.staff_ratings.record_staff_rating(&tour, &rating).await? {
        StaffRated::Recorded => {
            tracing::info!(booking_id = %tour.booking_id, score = score.get(), "booking rated by staff");
            staff_rated(&property, &tour, &rating, true, raw)
        }
        StaffRated::Already(first) => staff_rated(&property, &tour, &first, false, raw),
    })
}

/// What went wrong, from the staff rating page's form (`went_wrong`, one or more of [`StaffIssue`]): added to the
/// booking's staff rating once.
pub async fn staff_went_wrong(
    deps: &SelfServiceDeps<'_>,
    raw: &str,
    fields: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<Page, AppError> {
    let mut went_wrong = Vec::new();
    for (_, value) in fields.iter().filter(|(k, _)| k == "went_wrong") {
        let issue = StaffIssue::parse(value)?;
        if !went_wrong.contains(&issue) {
            went_wrong.push(issue);
        }
    }
    if went_wrong.is_empty() {
        return Err(InvalidField::new("went_wrong", "pick at least one").into());
    }
    let (_, tour, property) = match open(deps, raw, LinkPurpose::StaffRate, now).await? {
        Ok(found) => found,
        Err(page) => return Ok(page),
    };
    match deps
        .staff_ratings
        .record_went_wrong(&tour.booking_id, &went_wrong)
        .await?
    {
        Some(rating) => Ok(staff_rated(&property, &tour, &rating, false, raw)),
        None => Err(InvalidField::new("score", "rate the booking first: pick a score from 1 to 5 in the email").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fakes::{MemoryStore, MemoryTours};
    use crate::app::lifecycle::tests::{at, booked};
    use crate::domain::link::{Links, tests::key};
    use crate::domain::property::tests::{demo, monday_morning};

    fn deps<'a>(store: &'a MemoryStore, tours: &'a MemoryTours, key: &'a LinkKey) -> SelfServiceDeps<'a> {
        SelfServiceDeps {
            update: UpdateDeps {
                properties: store,
                calendar: store,
                tours,
                queue: tours,
            },
            ratings: tours,
            staff_ratings: tours,
            messages: tours,
            key,
        }
    }

    fn token_of(tour: &TourRecord) -> String {
        LinkToken::manage(tour).encode(&key())
    }

    fn tour_now(tours: &MemoryTours, tour: &TourRecord) -> TourRecord {
        tours.tours.lock().unwrap()[&tour.booking_id].clone()
    }

    fn refusal(page: &Page) -> &'static str {
        match page {
            Page::Refused { reason, .. } => reason,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_page_shows_the_tour_and_free_times_and_a_pick_moves_it_through_the_chatbots_rules() {
        let (store, tours, key) = (MemoryStore::with_property(demo()), MemoryTours::default(), key());
        let tour = booked(&tours, 1, "A", 10);
        let deps = deps(&store, &tours, &key);
        let page = manage_page(&deps, &token_of(&tour), monday_morning()).await.unwrap();
        let Page::Manage { tour: shown, times, .. } = &page else {
            panic!("{page:?}")
        };
        assert_eq!(shown.when, when_in_words(tour.start, demo().time_zone));
        assert!(!times.is_empty() && times.len() <= TIMES_OFFERED);
        assert!(
            times.iter().all(|t| t.start != tour.start.to_rfc3339()),
            "its own time is not offered"
        );
        let pick = times.last().unwrap();
        let action =
            Action::from_form(&[("action".into(), "move".into()), ("start".into(), pick.start.clone())]).unwrap();
        let moved = act(&deps, &token_of(&tour), &action, monday_morning()).await.unwrap();
        assert!(
            matches!(&moved, Page::Moved { tour } if tour.when == pick.when),
            "{moved:?}"
        );
        let after = tour_now(&tours, &tour);
        assert_eq!((after.start.to_rfc3339(), after.version), (pick.start.clone(), 2));
        assert_eq!(after.history.last().unwrap().source, ChangeSource::ProspectLink);
        assert_eq!(
            tours.queued.lock().unwrap().len(),
            1,
            "ResMan is owed the move, as from the chatbot"
        );
        let messages: Vec<_> = tours.queued_kinds();
        assert!(
            messages.contains(&crate::domain::notify::MessageKind::Rescheduled),
            "{messages:?}"
        );
    }

    #[tokio::test]
    async fn a_used_link_is_refused_and_the_email_about_the_change_brings_a_working_one() {
        let (store, tours, key) = (MemoryStore::with_property(demo()), MemoryTours::default(), key());
        let tour = booked(&tours, 1, "A", 10);
        let deps = deps(&store, &tours, &key);
        let first = token_of(&tour);
        let to = |hour| Action::Move { start: at(hour, 0) };
        assert!(matches!(
            act(&deps, &first, &to(14), monday_morning()).await.unwrap(),
            Page::Moved { .. }
        ));
        let again = act(&deps, &first, &to(15), monday_morning()).await.unwrap();
        assert_eq!(refusal(&again), "used");
        assert_eq!(
            refusal(&manage_page(&deps, &first, monday_morning()).await.unwrap()),
            "used"
        );
        assert_eq!(
            tour_now(&tours, &tour).start,
            at(14, 0),
            "the second use changed nothing"
        );
        let fresh = token_of(&tour_now(&tours, &tour));
        assert!(matches!(
            act(&deps, &fresh, &to(15), monday_morning()).await.unwrap(),
            Page::Moved { .. }
        ));
    }

    #[tokio::test]
    async fn a_cancelled_tour_refuses_its_links_and_a_forged_or_expired_link_shows_nothing() {
        let (store, tours, key) = (MemoryStore::with_property(demo()), MemoryTours::default(), key());
        let tour = booked(&tours, 1, "A", 10);
        let deps = deps(&store, &tours, &key);
        let link = token_of(&tour);
        let cancelled = act(&deps, &link, &Action::Cancel, monday_morning()).await.unwrap();
        assert!(matches!(&cancelled, Page::Cancelled { tour } if tour.status == "cancelled"));
        // A fresh link of the cancelled tour, as the cancellation email would have had if it carried one.
        let after = tour_now(&tours, &tour);
        let page = manage_page(&deps, &token_of(&after), monday_morning()).await.unwrap();
        assert_eq!(refusal(&page), "cancelled");
        let forged = link.replace(".m.", ".r.");
        let page = manage_page(&deps, &forged, monday_morning()).await.unwrap();
        assert_eq!(refusal(&page), "forged");
        assert!(
            matches!(page, Page::Refused { tour: None, .. }),
            "a forged link learns nothing"
        );
        let other = booked(&tours, 2, "B", 11);
        let page = manage_page(&deps, &token_of(&other), other.start).await.unwrap();
        assert_eq!(refusal(&page), "expired");
    }

    #[tokio::test]
    async fn two_prospects_picking_the_same_time_through_their_links_get_one_winner() {
        let (store, tours, key) = (MemoryStore::with_property(demo()), MemoryTours::default(), key());
        // Agent A gives both; only A gives in-person tours at 2 PM once B is busy then.
        let a = booked(&tours, 1, "A", 10);
        let b = booked(&tours, 2, "A", 11);
        let _busy = booked(&tours, 3, "B", 14);
        let deps = deps(&store, &tours, &key);
        let to = Action::Move { start: at(14, 0) };
        let (link_a, link_b) = (token_of(&a), token_of(&b));
        let (first, second) = tokio::join!(
            act(&deps, &link_a, &to, monday_morning()),
            act(&deps, &link_b, &to, monday_morning())
        );
        let pages = [first.unwrap(), second.unwrap()];
        let won = pages.iter().filter(|p| matches!(p, Page::Moved { .. })).count();
        let lost: Vec<_> = pages.iter().filter(|p| matches!(p, Page::Taken { .. })).collect();
        assert_eq!((won, lost.len()), (1, 1), "{pages:?}");
        let Page::Taken { times, .. } = lost[0] else {
            unreachable!()
        };
        assert!(
            times.iter().all(|t| t.start != at(14, 0).to_rfc3339()),
            "the taken time is not offered again"
        );
    }

    #[tokio::test]
    async fn a_staff_rating_is_recorded_once_per_booking_and_what_went_wrong_once_after_it() {
        let (store, tours, key) = (MemoryStore::with_property(demo()), MemoryTours::default(), key());
        let tour = booked(&tours, 1, "A", 10);
        let deps = deps(&store, &tours, &key);
        let raw = LinkToken::staff_rate(&tour).encode(&key);
        let went = |values: &[&str]| -> Vec<(String, String)> {
            values
                .iter()
                .map(|v| ("went_wrong".to_owned(), (*v).to_owned()))
                .collect()
        };
        // Nothing to add reasons to before a score.
        let early = staff_went_wrong(&deps, &raw, &went(&["wrong_time"]), monday_morning()).await;
        assert!(matches!(early, Err(AppError::Invalid(f)) if f.field == "score"));
        // Staff rate the booking before the tour (from the new-tour alert): recorded, with the list offered.
        let first = staff_rate(&deps, &raw, "2", monday_morning()).await.unwrap();
        let Page::StaffRated {
            score,
            first: was_first,
            choices,
            went_wrong,
            ..
        } = &first
        else {
            panic!("{first:?}")
        };
        assert_eq!((*score, *was_first, choices.len(), went_wrong.len()), (2, true, 7, 0));
        // A second click, another score: the first stands.
        let again = staff_rate(&deps, &raw, "5", monday_morning()).await.unwrap();
        assert!(
            matches!(
                again,
                Page::StaffRated {
                    score: 2,
                    first: false,
                    ..
                }
            ),
            "{again:?}"
        );
        // What went wrong: unknown reasons and an empty form are refused, naming the field.
        let bad = staff_went_wrong(&deps, &raw, &went(&["rude"]), monday_morning()).await;
        assert!(matches!(bad, Err(AppError::Invalid(f)) if f.field == "went_wrong"));
        let none = staff_went_wrong(&deps, &raw, &[], monday_morning()).await;
        assert!(matches!(none, Err(AppError::Invalid(f)) if f.field == "went_wrong"));
        let said = staff_went_wrong(
            &deps,
            &raw,
            &went(&["wrong_time", "missing_details", "wrong_time"]),
            monday_morning(),
        )
        .await
        .unwrap();
        assert!(
            matches!(&said, Page::StaffRated { choices, went_wrong, .. } if choices.is_empty() && went_wrong.len() == 2),
            "{said:?}"
        );
        // Said once: a later form changes nothing.
        staff_went_wrong(&deps, &raw, &went(&["other"]), monday_morning())
            .await
            .unwrap();
        let stored = tours.staff_ratings.lock().unwrap()[&tour.booking_id].clone();
        assert_eq!(stored.score.get(), 2);
        assert_eq!(
            stored.went_wrong,
            vec![StaffIssue::WrongTime, StaffIssue::MissingDetails]
        );
        // The prospect's rating link and the staff view's link cannot rate as staff.
        for other in [LinkToken::rate(&tour), LinkToken::staff(&tour)] {
            let page = staff_rate(&deps, &other.encode(&key), "5", monday_morning())
                .await
                .unwrap();
            assert_eq!(refusal(&page), "forged");
        }
        assert_eq!(tours.staff_ratings.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_rating_is_recorded_once_and_only_for_a_tour_that_took_place() {
        let (store, tours, key) = (MemoryStore::with_property(demo()), MemoryTours::default(), key());
        let mut tour = booked(&tours, 1, "A", 10);
        let deps = deps(&store, &tours, &key);
        let links = Links::new("https://tours.example/tour", key.clone()).unwrap();
        let raw = |t: &TourRecord| LinkToken::rate(t).encode(&key);
        let later = tour.end + chrono::Duration::hours(2);
        let early = rate(&deps, &raw(&tour), "5", later).await.unwrap();
        assert_eq!(refusal(&early), "over");
        tour.status = TourStatus::Completed;
        tours
            .tours
            .lock()
            .unwrap()
            .insert(tour.booking_id.clone(), tour.clone());
        assert_eq!(links.rate(&tour).len(), 5);
        let first = rate(&deps, &raw(&tour), "4", later).await.unwrap();
        assert_eq!(
            first,
            Page::Rated {
                property: demo().name,
                score: 4,
                first: true
            }
        );
        let second = rate(&deps, &raw(&tour), "1", later).await.unwrap();
        assert_eq!(
            second,
            Page::Rated {
                property: demo().name,
                score: 4,
                first: false
            }
        );
        assert!(matches!(rate(&deps, &raw(&tour), "9", later).await, Err(AppError::Invalid(f)) if f.field == "score"));
        let manage_as_rating = LinkToken::manage(&tour).encode(&key);
        assert_eq!(
            refusal(&rate(&deps, &manage_as_rating, "3", later).await.unwrap()),
            "forged"
        );
        let expired = rate(&deps, &raw(&tour), "3", tour.end + crate::domain::link::RATING_WINDOW)
            .await
            .unwrap();
        assert_eq!(refusal(&expired), "expired");
    }

    #[test]
    fn the_form_asks_for_a_move_to_a_time_or_a_cancellation() {
        let f = |pairs: &[(&str, &str)]| {
            Action::from_form(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(f(&[("action", "cancel")]).unwrap(), Action::Cancel);
        assert_eq!(
            f(&[("action", "move"), ("start", "2026-12-01T20:00:00+00:00")]).unwrap(),
            Action::Move { start: at(14, 0) }
        );
        assert_eq!(f(&[("action", "move")]).unwrap_err().field, "start");
        assert_eq!(f(&[("action", "move"), ("start", "2 PM")]).unwrap_err().field, "start");
        assert_eq!(f(&[("action", "confirm")]).unwrap_err().field, "action");
        assert_eq!(f(&[]).unwrap_err().field, "action");
    }

    #[tokio::test]
    async fn a_staff_alerts_link_shows_the_tour_its_prospect_and_its_history_read_only() {
        let (store, tours, key) = (MemoryStore::with_property(demo()), MemoryTours::default(), key());
        let tour = booked(&tours, 1, "A", 10);
        let deps = deps(&store, &tours, &key);
        act(
            &deps,
            &token_of(&tour),
            &Action::Move { start: at(15, 0) },
            monday_morning(),
        )
        .await
        .unwrap();
        let raw = LinkToken::staff(&tour).encode(&key);
        let page = staff_page(&deps, &raw, monday_morning()).await.unwrap();
        let Page::Staff {
            tour: shown,
            prospect,
            history,
            ..
        } = &page
        else {
            panic!("{page:?}")
        };
        assert_eq!(shown.when, when_in_words(at(15, 0), demo().time_zone));
        assert_eq!(
            (prospect.name.as_str(), prospect.email.as_str()),
            ("Ana Lopez", "ana@example.com")
        );
        assert!(prospect.in_resman.contains("EV-1"), "{}", prospect.in_resman);
        assert!(
            history.last().unwrap().what.contains("through their email's link"),
            "{history:?}"
        );
        // A manage link is not a staff link, nor the other way round.
        let as_manage = manage_page(&deps, &raw, monday_morning()).await.unwrap();
        assert_eq!(refusal(&as_manage), "forged");
        assert_eq!(
            refusal(&staff_page(&deps, &token_of(&tour), monday_morning()).await.unwrap()),
            "forged"
        );
    }
}
