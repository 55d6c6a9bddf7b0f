//! Seed data: the properties, staff and prospect sources the sandbox serves.
//!
//! The seed file and every `--properties` file share one shape: a JSON array of [`PropertySeed`].
//! Everything is validated before the server starts, so a typo in a seed file fails loudly at start-up
//! instead of showing up later as a puzzling `Property not found`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use uuid::Uuid;

/// The seed bundled into the binary (`infra/resman-sandbox/seed.json`).
pub(crate) const EMBEDDED_SEED: &str = include_str!("../seed.json");

/// One property with its staff and lead sources, as written in a seed file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertySeed {
    pub property_id: Uuid,
    pub name: String,
    pub street_address: String,
    pub city: String,
    pub state: String,
    pub zip: String,
    /// IANA name, e.g. `America/Chicago`; checked on load.
    pub time_zone: String,
    /// Days without an entry are closed. The sandbox does not enforce these (ResMan does not either);
    /// they are here so that local tooling configuring our side can read one source of truth.
    #[serde(default)]
    pub office_hours: Vec<OfficeHours>,
    pub employees: Vec<EmployeeSeed>,
    pub prospect_sources: Vec<ProspectSourceSeed>,
    /// The ResMan account (customer) the property belongs to; absent, the sandbox's own account.
    #[serde(default)]
    pub account_id: Option<i64>,
}

/// Opening hours for one weekday, in the property's local time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficeHours {
    /// `monday` or `mon`, any case.
    pub day: Weekday,
    /// `HH:MM`.
    pub open: NaiveTime,
    pub close: NaiveTime,
}

/// A member of staff; `id` is what goes into a MITS `AgentID`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmployeeSeed {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(default = "leasing_by_default")]
    pub is_leasing: bool,
}

fn leasing_by_default() -> bool {
    true
}

/// A lead source; its `id` is the MITS `TransactionSource` of a new guest card.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProspectSourceSeed {
    pub id: Uuid,
    pub name: String,
}

impl PropertySeed {
    pub(crate) fn employee(&self, id: Uuid) -> Option<&EmployeeSeed> {
        self.employees.iter().find(|e| e.id == id)
    }

    pub(crate) fn has_prospect_source(&self, id: Uuid) -> bool {
        self.prospect_sources.iter().any(|s| s.id == id)
    }
}

/// Why a seed could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("cannot read seed file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("seed {origin} is not a JSON array of properties")]
    Parse {
        origin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("property {property_id}: unknown IANA time zone {time_zone:?}")]
    InvalidTimeZone { property_id: Uuid, time_zone: String },
    #[error("{kind} id {id} appears more than once")]
    DuplicateId { kind: &'static str, id: Uuid },
    #[error("property {property_id}: office hours for {day} are given more than once")]
    DuplicateOfficeDay { property_id: Uuid, day: Weekday },
    #[error("property {property_id}: office hours for {day} close at or before they open")]
    EmptyOfficeHours { property_id: Uuid, day: Weekday },
}

/// Parses a seed document; `origin` names it in errors.
pub(crate) fn parse_properties(json: &str, origin: &str) -> Result<Vec<PropertySeed>, SeedError> {
    serde_json::from_str(json).map_err(|source| SeedError::Parse {
        origin: origin.to_owned(),
        source,
    })
}

pub(crate) fn read_properties(path: &Path) -> Result<Vec<PropertySeed>, SeedError> {
    let json = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_properties(&json, &path.display().to_string())
}

/// Checks a whole set of properties: ids are unique across all of them (an employee id is looked up
/// without its property when a staff change arrives), time zones exist and office hours make sense.
pub(crate) fn validate(properties: &[PropertySeed]) -> Result<(), SeedError> {
    let mut property_ids = HashSet::new();
    let mut employee_ids = HashSet::new();
    let mut source_ids = HashSet::new();
    for property in properties {
        if !property_ids.insert(property.property_id) {
            return Err(SeedError::DuplicateId {
                kind: "property",
                id: property.property_id,
            });
        }
        if property.time_zone.parse::<Tz>().is_err() {
            return Err(SeedError::InvalidTimeZone {
                property_id: property.property_id,
                time_zone: property.time_zone.clone(),
            });
        }
        let mut days = HashSet::new();
        for hours in &property.office_hours {
            if !days.insert(hours.day) {
                return Err(SeedError::DuplicateOfficeDay {
                    property_id: property.property_id,
                    day: hours.day,
                });
            }
            if hours.close <= hours.open {
                return Err(SeedError::EmptyOfficeHours {
                    property_id: property.property_id,
                    day: hours.day,
                });
            }
        }
        for employee in &property.employees {
            if !employee_ids.insert(employee.id) {
                return Err(SeedError::DuplicateId {
                    kind: "employee",
                    id: employee.id,
                });
            }
        }
        for source in &property.prospect_sources {
            if !source_ids.insert(source.id) {
                return Err(SeedError::DuplicateId {
                    kind: "prospect source",
                    id: source.id,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded() -> Vec<PropertySeed> {
        parse_properties(EMBEDDED_SEED, "embedded").expect("embedded seed parses")
    }

    #[test]
    fn embedded_seed_is_valid_and_has_the_ids_other_code_depends_on() {
        let properties = embedded();
        validate(&properties).expect("embedded seed is valid");
        let maple = &properties[0];
        assert_eq!(maple.property_id.to_string(), "5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f01");
        assert_eq!(maple.time_zone, "America/Chicago");
        assert_eq!(maple.employees.len(), 4);
        let morgan = maple
            .employee("a1e0c3b2-0004-4c6a-9d1e-000000000004".parse().expect("uuid"))
            .expect("Morgan is seeded");
        assert!(!morgan.is_leasing);
        assert!(maple.has_prospect_source("b7d3e8f0-0002-4d2c-8a5b-000000000002".parse().expect("uuid")));
        assert!(!maple.office_hours.iter().any(|h| h.day == Weekday::Sun));
        let saturday = maple
            .office_hours
            .iter()
            .find(|h| h.day == Weekday::Sat)
            .expect("open on Saturday");
        assert_eq!(saturday.open, NaiveTime::from_hms_opt(10, 0, 0).expect("time"));

        let saguaro = &properties[1];
        assert_eq!(saguaro.property_id.to_string(), "5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f02");
        assert_eq!(saguaro.time_zone, "America/Phoenix");
        assert_eq!(saguaro.employees.len(), 2);
        assert_eq!(saguaro.office_hours.len(), 6);
    }

    #[test]
    fn an_unknown_time_zone_is_refused_with_the_property_named() {
        let mut properties = embedded();
        properties[1].time_zone = "Mars/Olympus_Mons".to_owned();
        let err = validate(&properties).expect_err("bad zone refused");
        assert!(
            matches!(err, SeedError::InvalidTimeZone { property_id, .. } if property_id == properties[1].property_id)
        );
    }

    #[test]
    fn a_property_loaded_twice_is_refused_as_a_duplicate() {
        let mut properties = embedded();
        properties.push(properties[0].clone());
        let err = validate(&properties).expect_err("duplicate refused");
        assert!(matches!(err, SeedError::DuplicateId { kind: "property", .. }));
    }

    #[test]
    fn an_employee_id_shared_by_two_properties_is_refused() {
        let mut properties = embedded();
        let alex = properties[0].employees[0].clone();
        properties[1].employees.push(alex);
        let err = validate(&properties).expect_err("duplicate refused");
        assert!(matches!(err, SeedError::DuplicateId { kind: "employee", .. }));
    }

    #[test]
    fn office_hours_that_close_before_they_open_are_refused() {
        let mut properties = embedded();
        properties[0].office_hours[0].close = NaiveTime::from_hms_opt(8, 0, 0).expect("time");
        assert!(matches!(validate(&properties), Err(SeedError::EmptyOfficeHours { .. })));
    }

    #[test]
    fn a_seed_with_an_unknown_field_is_refused_at_parse_time() {
        let err = parse_properties(r#"[{"property_id": "x", "nmae": "typo"}]"#, "test").expect_err("refused");
        assert!(matches!(err, SeedError::Parse { .. }));
    }
}
