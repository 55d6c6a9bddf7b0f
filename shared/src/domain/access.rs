//! Who may speak for which management companies: a scope of ResMan accounts, and the webhook's relays (each a secret
//! bound to the accounts it may report on). Pure: the caller reads the secret.

use super::resman::ResManAccountId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// An account as a credential names it: by its `AccountID`, or `"default"`, the account of the partner credentials
/// (the one a property without `resman_account_id` belongs to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountRef {
    Default,
    Id(ResManAccountId),
}

/// The ResMan accounts (management companies) a credential reaches: all of them (`"*"`), or the ones it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accounts {
    All,
    Only(BTreeSet<AccountRef>),
}

impl Accounts {
    /// Whether a property of `account` (as the property names it; `None`: the default account) is in reach.
    pub fn covers(&self, account: Option<ResManAccountId>) -> bool {
        match self {
            Accounts::All => true,
            Accounts::Only(accounts) => accounts.contains(&account.map_or(AccountRef::Default, AccountRef::Id)),
        }
    }
}

/// One relay of ResMan's change notices: its name, the accounts it may report on and the secret it signs with.
#[derive(Clone, PartialEq, Eq)]
pub struct Relay {
    pub name: String,
    pub accounts: Accounts,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("name", &self.name)
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

/// The shortest secret a relay may sign with.
pub const MIN_SECRET_CHARS: usize = 16;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayFile {
    name: String,
    accounts: AccountsFile,
    secret: String,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum AccountsFile {
    /// `"*"`: every account.
    Every(String),
    List(Vec<AccountFile>),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum AccountFile {
    Id(u64),
    /// `"default"`.
    Word(String),
}

impl Relay {
    /// The webhook secret as written: a JSON array of `{"name", "accounts": "*" | [AccountID or "default", ...],
    /// "secret"}`, or (as before relays) a plain string of 16 characters or more, one relay for every account.
    pub fn parse_all(raw: &str) -> Result<Vec<Relay>, String> {
        let relays = if raw.trim_start().starts_with('[') {
            let files: Vec<RelayFile> = serde_json::from_str(raw).map_err(|e| {
                // Where, not what: serde's words can quote a value, and a value may be a secret.
                format!(
                    "not a JSON array of relays {{name, accounts, secret}} (line {}, column {})",
                    e.line(),
                    e.column()
                )
            })?;
            files.into_iter().map(Relay::from_file).collect::<Result<Vec<_>, _>>()?
        } else {
            vec![Relay {
                name: "default".into(),
                accounts: Accounts::All,
                secret: raw.as_bytes().to_vec(),
            }]
        };
        if relays.is_empty() {
            return Err("no relay configured".into());
        }
        if let Some(short) = relays.iter().find(|r| r.secret.len() < MIN_SECRET_CHARS) {
            return Err(format!(
                "relay {:?}: the secret is shorter than {MIN_SECRET_CHARS} characters",
                short.name
            ));
        }
        for (i, relay) in relays.iter().enumerate() {
            if relays[..i].iter().any(|r| r.name == relay.name) {
                return Err(format!("two relays are named {:?}", relay.name));
            }
            if relays[..i].iter().any(|r| r.secret == relay.secret) {
                return Err(format!("relay {:?} shares its secret with another relay", relay.name));
            }
        }
        Ok(relays)
    }

    fn from_file(file: RelayFile) -> Result<Relay, String> {
        let accounts = match file.accounts {
            AccountsFile::Every(star) if star == "*" => Accounts::All,
            AccountsFile::Every(other) => {
                return Err(format!(
                    "relay {:?}: accounts is {other:?}; write \"*\" or a list",
                    file.name
                ));
            }
            AccountsFile::List(list) => {
                let refs = list
                    .into_iter()
                    .map(|a| match a {
                        AccountFile::Id(id) => Ok(AccountRef::Id(ResManAccountId(id))),
                        AccountFile::Word(w) if w == "default" => Ok(AccountRef::Default),
                        AccountFile::Word(w) => Err(format!(
                            "relay {:?}: account {w:?} is neither an AccountID nor \"default\"",
                            file.name
                        )),
                    })
                    .collect::<Result<BTreeSet<_>, _>>()?;
                if refs.is_empty() {
                    return Err(format!("relay {:?}: no account named", file.name));
                }
                Accounts::Only(refs)
            }
        };
        Ok(Relay {
            name: file.name,
            accounts,
            secret: file.secret.into_bytes(),
        })
    }

    /// The relay as one value of a rotating secret (kept while its secret is retired, within the grace).
    pub fn to_value(&self) -> Vec<u8> {
        let accounts = match &self.accounts {
            Accounts::All => AccountsFile::Every("*".into()),
            Accounts::Only(refs) => AccountsFile::List(
                refs.iter()
                    .map(|r| match r {
                        AccountRef::Default => AccountFile::Word("default".into()),
                        AccountRef::Id(id) => AccountFile::Id(id.0),
                    })
                    .collect(),
            ),
        };
        let file = RelayFile {
            name: self.name.clone(),
            accounts,
            secret: String::from_utf8_lossy(&self.secret).into_owned(),
        };
        serde_json::to_vec(&file).unwrap_or_default()
    }

    /// The relays a rotating secret accepts, from its values (current first, then retired ones within the grace). A
    /// retired value whose secret a current relay still signs with is dropped: the current scope is the one that holds.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Vec<Relay> {
        let mut relays: Vec<Relay> = Vec::new();
        for value in values {
            let Ok(file) = serde_json::from_slice::<RelayFile>(value) else {
                continue;
            };
            let Ok(relay) = Relay::from_file(file) else {
                continue;
            };
            if !relays.iter().any(|r| r.secret == relay.secret) {
                relays.push(relay);
            }
        }
        relays
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Option<ResManAccountId> {
        Some(ResManAccountId(n))
    }

    #[test]
    fn a_scope_covers_the_accounts_it_names_and_default_is_the_partners_own() {
        let only = Relay::parse_all(r#"[{"name":"r","accounts":[401,"default"],"secret":"0123456789abcdef"}]"#)
            .unwrap()
            .remove(0)
            .accounts;
        assert!(only.covers(id(401)));
        assert!(only.covers(None));
        assert!(!only.covers(id(400)));
        assert!(Accounts::All.covers(id(400)) && Accounts::All.covers(None));
    }

    #[test]
    fn a_plain_secret_is_one_relay_for_every_account() {
        let relays = Relay::parse_all("0123456789abcdef-plain").unwrap();
        assert_eq!(relays.len(), 1);
        assert_eq!(relays[0].accounts, Accounts::All);
        assert_eq!(relays[0].secret, b"0123456789abcdef-plain");
    }

    #[test]
    fn a_relay_file_with_a_mistake_names_it() {
        for (raw, says) in [
            (r#"[]"#, "no relay"),
            (
                r#"[{"name":"r","accounts":"all","secret":"0123456789abcdef"}]"#,
                "\"*\"",
            ),
            (
                r#"[{"name":"r","accounts":[],"secret":"0123456789abcdef"}]"#,
                "no account",
            ),
            (
                r#"[{"name":"r","accounts":["x"],"secret":"0123456789abcdef"}]"#,
                "neither",
            ),
            (r#"[{"name":"r","accounts":"*","secret":"short"}]"#, "shorter"),
            (
                r#"[{"name":"r","accounts":"*","secret":"0123456789abcdef"},{"name":"r","accounts":"*","secret":"0123456789abcdeg"}]"#,
                "two relays",
            ),
            (
                r#"[{"name":"a","accounts":"*","secret":"0123456789abcdef"},{"name":"b","accounts":"*","secret":"0123456789abcdef"}]"#,
                "shares",
            ),
            (r#"[{"name":"r","accounts":"*"}]"#, "JSON"),
            ("short", "shorter"),
        ] {
            let err = Relay::parse_all(raw).unwrap_err();
            assert!(err.contains(says), "{raw}: {err}");
            assert!(!err.contains("0123456789abcdef"), "a secret in an error: {err}");
        }
    }

    #[test]
    fn relays_round_trip_through_a_rotating_secrets_values_and_the_current_scope_wins() {
        let before = Relay::parse_all(r#"[{"name":"r","accounts":"*","secret":"0123456789abcdef"}]"#).unwrap();
        let narrowed = Relay::parse_all(r#"[{"name":"r","accounts":[401],"secret":"0123456789abcdef"}]"#).unwrap();
        let retired = before[0].to_value();
        let current = narrowed[0].to_value();
        let relays = Relay::from_values([current.as_slice(), retired.as_slice()]);
        assert_eq!(
            relays, narrowed,
            "the retired, wider scope of the same secret does not linger"
        );
        assert!(!format!("{relays:?}").contains("0123456789abcdef"));
    }
}
