//! Slot holds across chat turns. Items:
//! - `HOLD#<conversation>` / `HOLD`: the conversation's one hold (`hold` as JSON, `hold_token`, `held_until`).
//! - `LOCK#…` / `LOCK`: the held slot's locks, the same items a tour takes, with `hold_token` and `held_until`
//!   (epoch seconds). A lock is taken only where none exists or where `held_until <= now` (see
//!   [`super::tours::lock_condition`]), so a hold keeps its slot from every booking and every other hold until that
//!   instant, and from then on it is free without anything having to delete it.
//! - `BUSY#…` / `<start>#HOLD#<token>`: the held time, with the same two attributes, so availability stops showing
//!   the slot while held and shows it again once `held_until` has passed (`slots::in_force`).
//!
//! - `HOLDPLACE#<property>#<hour, epoch seconds>#<key name>` / `<number>`: one of a key's places at a property and
//!   hour (`domain::hold::HoldPlace`), with the hold's two attributes. Taken under the lock condition (none, lapsed,
//!   or the conversation's previous hold), so at most the bound's number of a key's holds are live there at once;
//!   a hold that gives way (replaced, or booked) frees its place in the same transaction.
//!
//! TTL (`expires_at`, a day after `held_until`) only tidies lapsed holds away; no rule waits for it.

use super::calendar::{busy_item, busy_pk, busy_sk, dates_of, generation_bumps, lost_a_condition};
use super::tours::{delete, lock_condition, lock_key_of, put_if};
use super::{DynamoStore, Item, corrupt, key, n, s};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;
use tour_core::domain::hold::{HoldPlace, PlaceTaken, SlotHold};
use tour_core::domain::property::Property;
use tour_core::domain::{ids::ConversationId, record::lock_granules};
use tour_core::ports::{HoldStore, HoldWrite, StoreError};

/// How long a lapsed hold's items stay before TTL removes them.
const HOLD_RETENTION: Duration = Duration::days(1);

fn hold_key(conversation: &ConversationId) -> Item {
    key(format!("HOLD#{}", conversation.as_str()), "HOLD")
}

fn place_pk(property: &tour_core::domain::ResManPropertyId, key_name: &str, hour: DateTime<Utc>) -> String {
    format!("HOLDPLACE#{property}#{}#{key_name}", hour.timestamp())
}

fn place_key(property: &tour_core::domain::ResManPropertyId, place: &HoldPlace) -> Item {
    key(place_pk(property, &place.key, place.hour), &place.number.to_string())
}

fn pk_of(item: &Item) -> String {
    item.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

/// The hold's marks on a lock or busy item.
fn mark(item: &mut Item, hold: &SlotHold) {
    item.insert("hold_token".into(), s(hold.token.as_str()));
    item.insert("held_until".into(), n(hold.held_until.timestamp()));
    item.insert("expires_at".into(), n((hold.held_until + HOLD_RETENTION).timestamp()));
}

fn busy_key(hold: &SlotHold) -> Item {
    key(
        busy_pk(&hold.property_id, hold.start),
        &busy_sk(hold.start, "HOLD", hold.token.as_str()),
    )
}

/// Frees what `hold` holds, as transaction items: its busy time, and while it is live at `now` its locks (those not
/// in `keep`, which the caller overwrites), each only if still the hold's; with `delete_item`, the conversation's
/// hold item too, only if it is still this hold. A lapsed hold's locks are left as they are: they are free already.
pub(crate) fn release_items(
    table: &str,
    property: &Property,
    hold: &SlotHold,
    keep: &BTreeSet<String>,
    delete_item: bool,
    now: DateTime<Utc>,
) -> Result<Vec<TransactWriteItem>, StoreError> {
    let mine = |item_key: Item| -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(table)
            .set_key(Some(item_key))
            .condition_expression("hold_token = :hold")
            .expression_attribute_values(":hold", s(hold.token.as_str()))
            .build()
            .map_err(corrupt("hold delete"))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    };
    let mut items = vec![delete(table, busy_key(hold))?];
    if hold.is_live(now) {
        if let Some(place) = hold
            .place
            .as_ref()
            .filter(|p| !keep.contains(&full_key(&hold.property_id, p)))
        {
            items.push(mine(place_key(&hold.property_id, place))?);
        }
        for granule in lock_granules(property, &hold.holder, &hold.window()) {
            let lock = lock_key_of(&hold.property_id, &hold.holder, granule);
            if !keep.contains(&pk_of(&lock)) {
                items.push(mine(lock)?);
            }
        }
    }
    if delete_item {
        items.push(mine(hold_key(&hold.conversation_id))?);
    }
    Ok(items)
}

/// A place's whole key as one string, to tell it apart in `keep`.
fn full_key(property: &tour_core::domain::ResManPropertyId, place: &HoldPlace) -> String {
    format!("{}/{}", place_pk(property, &place.key, place.hour), place.number)
}

impl DynamoStore {
    /// The conversation's hold item, if any.
    pub(crate) async fn hold_of(&self, conversation: &ConversationId) -> Result<Option<SlotHold>, StoreError> {
        self.get(hold_key(conversation))
            .await?
            .as_ref()
            .map(|item| {
                let json = item
                    .get("hold")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| StoreError::Corrupt("a hold item without its hold".into()))?;
                serde_json::from_str(json).map_err(corrupt("hold"))
            })
            .transpose()
    }

    async fn try_place_hold(
        &self,
        property: &Property,
        hold: &SlotHold,
        previous: Option<&SlotHold>,
        release_previous: bool,
        now: DateTime<Utc>,
    ) -> Result<Result<HoldWrite, Vec<Option<String>>>, StoreError> {
        let granules = lock_granules(property, &hold.holder, &hold.window());
        let mut item = hold_key(&hold.conversation_id);
        item.insert("hold".into(), s(serde_json::to_string(hold).map_err(corrupt("hold"))?));
        mark(&mut item, hold);
        let mut items = vec![match previous {
            Some(previous) => put_if(
                &self.table,
                item,
                (
                    "hold_token = :previous",
                    vec![(":previous", s(previous.token.as_str()))],
                ),
            )?,
            None => put_if(&self.table, item, ("attribute_not_exists(pk)", Vec::new()))?,
        }];
        // The conversation's own previous hold never stands in the way of its new one.
        let own = previous.map(|p| &p.token);
        let mut taken = BTreeSet::new();
        for granule in &granules {
            let mut lock = lock_key_of(&hold.property_id, &hold.holder, *granule);
            taken.insert(pk_of(&lock));
            mark(&mut lock, hold);
            items.push(put_if(&self.table, lock, lock_condition(now, own))?);
        }
        let locks = 1..items.len();
        let place_at = match &hold.place {
            Some(place) => {
                taken.insert(full_key(&hold.property_id, place));
                let mut item = place_key(&hold.property_id, place);
                mark(&mut item, hold);
                items.push(put_if(&self.table, item, lock_condition(now, own))?);
                Some(items.len() - 1)
            }
            None => None,
        };
        let mut busy = busy_item(
            &hold.property_id,
            hold.holder.agent(),
            &hold.window(),
            "HOLD",
            hold.token.as_str(),
        );
        mark(&mut busy, hold);
        items.push(put_if(&self.table, busy, ("attribute_not_exists(pk)", Vec::new()))?);
        let mut dates = dates_of(property, &hold.window());
        if let Some(previous) = previous.filter(|p| p.property_id == property.id) {
            dates.extend(dates_of(property, &previous.window()));
            if release_previous {
                items.extend(release_items(&self.table, property, previous, &taken, false, now)?);
            }
        }
        items.extend(generation_bumps(&self.table, &property.id, &dates)?);
        match self.transact(items).await {
            Ok(()) => Ok(Ok(HoldWrite::Placed)),
            Err(e) => match lost_a_condition(&e) {
                Some(reasons) => {
                    let code = |i: usize| reasons.get(i).and_then(|r| r.as_deref());
                    let lost = |i: Option<usize>| {
                        matches!(i.and_then(code), Some("ConditionalCheckFailed" | "TransactionConflict"))
                    };
                    // The slot taken comes before the place: the next holder may still be free.
                    if lost(Some(0)) {
                        Ok(Ok(HoldWrite::Raced))
                    } else if locks.clone().any(|i| lost(Some(i))) {
                        Ok(Ok(HoldWrite::SlotTaken))
                    } else if lost(place_at) {
                        Ok(Ok(HoldWrite::Raced))
                    } else {
                        Ok(Err(reasons))
                    }
                }
                None => Err(super::unavailable(e)),
            },
        }
    }
}

#[async_trait]
impl HoldStore for DynamoStore {
    async fn hold(
        &self,
        conversation: &tour_core::domain::ConversationId,
    ) -> Result<Option<tour_core::domain::hold::SlotHold>, StoreError> {
        self.hold_of(conversation).await
    }

    async fn places(
        &self,
        property: &tour_core::domain::ResManPropertyId,
        key_name: &str,
        hour: DateTime<Utc>,
    ) -> Result<Vec<PlaceTaken>, StoreError> {
        let pk = place_pk(property, key_name, hour);
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(pk.clone()))
            })
            .await?;
        items
            .iter()
            .map(|item| {
                let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
                let bad = |what: &str| StoreError::Corrupt(format!("a hold place with a bad {what}"));
                let number = text("sk").and_then(|v| v.parse().ok()).ok_or_else(|| bad("number"))?;
                let token = text("hold_token")
                    .and_then(|v| tour_core::domain::HoldToken::parse(v).ok())
                    .ok_or_else(|| bad("token"))?;
                let held_until = item
                    .get("held_until")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .and_then(|v| DateTime::from_timestamp(v, 0))
                    .ok_or_else(|| bad("held_until"))?;
                Ok(PlaceTaken {
                    number,
                    token,
                    held_until,
                })
            })
            .collect()
    }

    async fn place_hold(
        &self,
        property: &Property,
        hold: &SlotHold,
        previous: Option<&SlotHold>,
        now: DateTime<Utc>,
    ) -> Result<HoldWrite, StoreError> {
        match self.try_place_hold(property, hold, previous, true, now).await? {
            Ok(outcome) => Ok(outcome),
            // Freeing the previous hold's time failed (a staff move took one of its granules): place the new hold
            // alone, and what the old one still holds lapses by itself.
            Err(_) => match self.try_place_hold(property, hold, previous, false, now).await? {
                Ok(outcome) => Ok(outcome),
                Err(reasons) => Err(StoreError::Unavailable(format!(
                    "hold transaction cancelled: {reasons:?}"
                ))),
            },
        }
    }
}
