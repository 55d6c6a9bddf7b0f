//! Ratings: `TOUR#<booking id>` / `RATING`, beside the tour (kept as long as the tour, for the property's figures),
//! put under `attribute_not_exists`, so a tour is rated once however many clicks arrive at once.

use super::{DynamoStore, key, n, s, unavailable};
use crate::domain::booking::{BookingId, TourRecord};
use crate::domain::link::{Rating, Score};
use crate::ports::{Rated, RatingStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;

fn rating_key(booking: &BookingId) -> super::Item {
    key(format!("TOUR#{booking}"), "RATING")
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

#[async_trait]
impl RatingStore for DynamoStore {
    async fn record_rating(&self, tour: &TourRecord, rating: Rating) -> Result<Rated, StoreError> {
        let mut item = rating_key(&tour.booking_id);
        item.insert("score".into(), n(i64::from(rating.score.get())));
        item.insert("at".into(), s(rating.at.to_rfc3339()));
        item.insert("property_id".into(), s(tour.property_id.to_string()));
        // Counted with the tour it rates (the satisfaction score of a period's tours).
        super::analytics::stats_keys(
            &mut item,
            super::analytics::StatsIndex::ByStart,
            &tour.property_id,
            tour.start,
            &format!("RATING#{}", tour.booking_id),
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
            Ok(_) => Ok(Rated::Recorded),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                match self.rating(&tour.booking_id).await? {
                    Some(first) => Ok(Rated::Already(first)),
                    None => Err(StoreError::Corrupt("a rating that was there is gone".into())),
                }
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn rating(&self, booking: &BookingId) -> Result<Option<Rating>, StoreError> {
        self.get(rating_key(booking))
            .await?
            .as_ref()
            .map(rating_from)
            .transpose()
    }
}
