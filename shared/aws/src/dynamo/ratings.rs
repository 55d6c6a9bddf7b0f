//! Ratings: `TOUR#<booking id>` / `RATING` (the prospect's) and `STAFF_RATING` (the leasing team's), beside the tour
//! (kept as long as the tour, for the property's figures), put under `attribute_not_exists`, so a tour is rated once
//! however many clicks arrive at once. What went wrong is added to the staff rating once, under its own condition.

use super::{DynamoStore, key, n, s, unavailable};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use tour_core::domain::link::{Rating, Score, StaffIssue, StaffRating};
use tour_core::domain::{ids::BookingId, record::TourRecord};
use tour_core::ports::{Rated, RatingStore, StaffRated, StaffRatingStore, StoreError};

fn rating_key(booking: &BookingId) -> super::Item {
    key(format!("TOUR#{booking}"), "RATING")
}

fn staff_rating_key(booking: &BookingId) -> super::Item {
    key(format!("TOUR#{booking}"), "STAFF_RATING")
}

pub(crate) fn staff_rating_from(item: &super::Item) -> Result<StaffRating, StoreError> {
    let rating = rating_from(item)?;
    let went_wrong = match item.get("went_wrong") {
        None => Vec::new(),
        Some(v) => v
            .as_l()
            .map_err(|_| StoreError::Corrupt("a staff rating's went_wrong".into()))?
            .iter()
            .map(|i| {
                i.as_s()
                    .ok()
                    .and_then(|raw| StaffIssue::parse(raw).ok())
                    .ok_or_else(|| StoreError::Corrupt("a staff rating's went_wrong".into()))
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(StaffRating {
        score: rating.score,
        at: rating.at,
        went_wrong,
    })
}

pub(crate) fn rating_from(item: &super::Item) -> Result<Rating, StoreError> {
    let corrupt = || StoreError::Corrupt("a rating item".into());
    let score = item
        .get("score")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u8>().ok())
        .and_then(|v| Score::try_from(v).ok())
        .ok_or_else(corrupt)?;
    let at = item
        .get("at")
        .and_then(|v| v.as_s().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
        .ok_or_else(corrupt)?;
    Ok(Rating {
        score,
        at: at.with_timezone(&chrono::Utc),
    })
}

impl DynamoStore {
    /// Puts a rating item of `tour` (`sk` `RATING` or `STAFF_RATING`) unless the tour has one: whether it was put.
    async fn put_rating_once(
        &self,
        tour: &TourRecord,
        mut item: super::Item,
        score: Score,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        item.insert("score".into(), n(i64::from(score.get())));
        item.insert("at".into(), s(at.to_rfc3339()));
        item.insert("property_id".into(), s(tour.property_id.to_string()));
        // Counted with the tour it rates (the satisfaction figures of a period's tours).
        super::analytics::stats_keys(
            &mut item,
            super::analytics::StatsIndex::ByStart,
            &tour.property_id,
            tour.start,
            &format!("{sk}#{}", tour.booking_id),
        );
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn staff_rating(&self, booking: &BookingId) -> Result<Option<StaffRating>, StoreError> {
        self.get(staff_rating_key(booking))
            .await?
            .as_ref()
            .map(staff_rating_from)
            .transpose()
    }
}

fn went_wrong_list(went_wrong: &[StaffIssue]) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::L(went_wrong.iter().map(|i| s(i.as_str().to_owned())).collect())
}

fn gone() -> StoreError {
    StoreError::Corrupt("a rating that was there is gone".into())
}

#[async_trait]
impl StaffRatingStore for DynamoStore {
    async fn record_staff_rating(&self, tour: &TourRecord, rating: &StaffRating) -> Result<StaffRated, StoreError> {
        let mut item = staff_rating_key(&tour.booking_id);
        if !rating.went_wrong.is_empty() {
            item.insert("went_wrong".into(), went_wrong_list(&rating.went_wrong));
        }
        if self.put_rating_once(tour, item, rating.score, rating.at).await? {
            return Ok(StaffRated::Recorded);
        }
        Ok(StaffRated::Already(
            self.staff_rating(&tour.booking_id).await?.ok_or_else(gone)?,
        ))
    }

    async fn record_went_wrong(
        &self,
        booking: &BookingId,
        went_wrong: &[StaffIssue],
    ) -> Result<Option<StaffRating>, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(staff_rating_key(booking)))
            .update_expression("SET went_wrong = :w")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(went_wrong)")
            .expression_attribute_values(":w", went_wrong_list(went_wrong))
            .send()
            .await;
        match update {
            Ok(_) => {}
            // No rating yet, or it says already: the rating as it stands tells which.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {}
            Err(e) => return Err(unavailable(e)),
        }
        self.staff_rating(booking).await
    }
}

#[async_trait]
impl RatingStore for DynamoStore {
    async fn record_rating(&self, tour: &TourRecord, rating: Rating) -> Result<Rated, StoreError> {
        if self
            .put_rating_once(tour, rating_key(&tour.booking_id), rating.score, rating.at)
            .await?
        {
            return Ok(Rated::Recorded);
        }
        Ok(Rated::Already(self.rating(&tour.booking_id).await?.ok_or_else(gone)?))
    }

    async fn rating(&self, booking: &BookingId) -> Result<Option<Rating>, StoreError> {
        self.get(rating_key(booking))
            .await?
            .as_ref()
            .map(rating_from)
            .transpose()
    }
}
