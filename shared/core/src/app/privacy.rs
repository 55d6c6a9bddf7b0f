//! A prospect's personal data, on request: a data-subject request to erase it removes it from every tour booked
//! with their e-mail at once. The tours stay (without a name, address or phone), so every count made from them
//! stays too. The same data leaves by itself a configured time after each tour (the personal-data item's TTL).

use super::AppError;
use crate::domain::BookingId;
use crate::domain::Email;
use crate::ports::PersonalData;

/// Erases the personal data of every tour booked with `email`: the tours it was removed from.
pub async fn erase_prospect(store: &dyn PersonalData, email: &str) -> Result<Vec<BookingId>, AppError> {
    let email = Email::parse(email)?;
    let erased = store.erase_prospect(&email).await?;
    // Ids and a count only: the address is what is being forgotten.
    tracing::info!(tours = erased.len(), "personal data erased on request");
    Ok(erased)
}
