//! A key's reach: only the properties of the management companies (ResMan accounts) its scope names. A property out
//! of reach reads as unknown, so a use case answers about it, and about its tours, exactly as about an id that does
//! not exist (404): ids cannot be probed. Each such refusal is counted (`AccessRefusals`).

use crate::domain::ResManPropertyId;
use crate::domain::access::Accounts;
use crate::domain::property::Property;
use crate::ports::{PropertyStore, StoreError};
use async_trait::async_trait;

/// The properties a key may reach, over the store of all of them.
pub struct InReach<'a> {
    properties: &'a dyn PropertyStore,
    accounts: &'a Accounts,
}

impl<'a> InReach<'a> {
    pub fn new(properties: &'a dyn PropertyStore, accounts: &'a Accounts) -> Self {
        Self { properties, accounts }
    }

    fn reaches(&self, property: &Property) -> bool {
        reaches(self.accounts, property)
    }
}

/// Whether a key with `accounts` may reach `property`; a refusal is counted and logged (by property id).
pub fn reaches(accounts: &Accounts, property: &Property) -> bool {
    let reached = accounts.covers(property.account);
    if !reached {
        crate::metrics::count(crate::metrics::Metric::AccessRefusals);
        tracing::warn!(property_id = %property.id, "refused: the property is outside the key's accounts");
    }
    reached
}

#[async_trait]
impl PropertyStore for InReach<'_> {
    async fn property(&self, id: &ResManPropertyId) -> Result<Option<Property>, StoreError> {
        Ok(self.properties.property(id).await?.filter(|p| self.reaches(p)))
    }

    async fn properties(&self) -> Result<Vec<Property>, StoreError> {
        let all = self.properties.properties().await?;
        Ok(all.into_iter().filter(|p| self.accounts.covers(p.account)).collect())
    }

    async fn save_property(&self, property: &Property) -> Result<(), StoreError> {
        if !self.reaches(property) {
            return Err(StoreError::Corrupt("a property outside the key's accounts".into()));
        }
        self.properties.save_property(property).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fakes::MemoryStore;
    use crate::domain::access::{AccountRef, Accounts};
    use crate::domain::property::tests::demo;
    use crate::domain::resman::ResManAccountId;

    #[tokio::test]
    async fn a_property_of_another_company_reads_as_unknown_and_is_counted() {
        let store = MemoryStore::with_property(demo());
        let riverside = Accounts::Only([AccountRef::Id(ResManAccountId(401))].into());
        let (found, lines) = crate::metrics::capture(InReach::new(&store, &riverside).property(&demo().id)).await;
        assert!(found.unwrap().is_none());
        assert_eq!(crate::metrics::names(&lines), vec!["AccessRefusals"]);
        let home = Accounts::Only([AccountRef::Default].into());
        assert!(
            InReach::new(&store, &home)
                .property(&demo().id)
                .await
                .unwrap()
                .is_some()
        );
        assert!(InReach::new(&store, &riverside).properties().await.unwrap().is_empty());
    }
}
