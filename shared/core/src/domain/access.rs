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

/// Every account: the reach of the system's own work (the workers, the webhook's relays are checked apart).
pub static EVERY_ACCOUNT: Accounts = Accounts::All;

impl Accounts {
    /// Whether a property of `account` (as the property names it; `None`: the default account) is in reach.
    pub fn covers(&self, account: Option<ResManAccountId>) -> bool {
        match self {
            Accounts::All => true,
            Accounts::Only(accounts) => accounts.contains(&account.map_or(AccountRef::Default, AccountRef::Id)),
        }
    }
}

/// Where a secret's JSON went wrong, never what it held: serde's words can quote a value, and a value may be a secret.
fn place_of(e: &serde_json::Error) -> String {
    format!("line {}, column {}", e.line(), e.column())
}

/// The first of each: values read from a rotating secret, current first, keep one per `same` (a retired value for a
/// secret still current is dropped, so its current scope is the one that holds).
fn first_of_each<T>(values: impl IntoIterator<Item = T>, same: impl Fn(&T, &T) -> bool) -> Vec<T> {
    let mut kept: Vec<T> = Vec::new();
    for value in values {
        if !kept.iter().any(|k| same(k, &value)) {
            kept.push(value);
        }
    }
    kept
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

impl AccountsFile {
    /// The scope as written, for `whose` (named in the reason when it is wrong).
    fn read(self, whose: &str) -> Result<Accounts, String> {
        match self {
            AccountsFile::Every(star) if star == "*" => Ok(Accounts::All),
            AccountsFile::Every(other) => Err(format!("{whose}: accounts is {other:?}; write \"*\" or a list")),
            AccountsFile::List(list) => {
                let refs = list
                    .into_iter()
                    .map(|a| match a {
                        AccountFile::Id(id) => Ok(AccountRef::Id(ResManAccountId(id))),
                        AccountFile::Word(w) if w == "default" => Ok(AccountRef::Default),
                        AccountFile::Word(w) => Err(format!(
                            "{whose}: account {w:?} is neither an AccountID nor \"default\""
                        )),
                    })
                    .collect::<Result<BTreeSet<_>, _>>()?;
                if refs.is_empty() {
                    return Err(format!("{whose}: no account named"));
                }
                Ok(Accounts::Only(refs))
            }
        }
    }

    fn of(accounts: &Accounts) -> Self {
        match accounts {
            Accounts::All => AccountsFile::Every("*".into()),
            Accounts::Only(refs) => AccountsFile::List(
                refs.iter()
                    .map(|r| match r {
                        AccountRef::Default => AccountFile::Word("default".into()),
                        AccountRef::Id(id) => AccountFile::Id(id.0),
                    })
                    .collect(),
            ),
        }
    }
}

impl Relay {
    /// The webhook secret as written: a JSON array of `{"name", "accounts": "*" | [AccountID or "default", ...],
    /// "secret"}`, or (as before relays) a plain string of 16 characters or more, one relay for every account.
    pub fn parse_all(raw: &str) -> Result<Vec<Relay>, String> {
        let relays = if raw.trim_start().starts_with('[') {
            let files: Vec<RelayFile> = serde_json::from_str(raw).map_err(|e| {
                format!(
                    "not a JSON array of relays {{name, accounts, secret}} ({})",
                    place_of(&e)
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
        let accounts = file.accounts.read(&format!("relay {:?}", file.name))?;
        Ok(Relay {
            name: file.name,
            accounts,
            secret: file.secret.into_bytes(),
        })
    }

    /// The relay as one value of a rotating secret (kept while its secret is retired, within the grace).
    pub fn to_value(&self) -> Vec<u8> {
        let file = RelayFile {
            name: self.name.clone(),
            accounts: AccountsFile::of(&self.accounts),
            secret: String::from_utf8_lossy(&self.secret).into_owned(),
        };
        serde_json::to_vec(&file).unwrap_or_default()
    }

    /// The relays a rotating secret accepts, from its values (current first, then retired ones within the grace). A
    /// retired value whose secret a current relay still signs with is dropped: the current scope is the one that holds.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Vec<Relay> {
        let relays = values
            .into_iter()
            .filter_map(|value| serde_json::from_slice::<RelayFile>(value).ok())
            .filter_map(|file| Relay::from_file(file).ok());
        first_of_each(relays, |a, b| a.secret == b.secret)
    }
}

/// Who holds an API key, and so what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// DomIQ's chatbot: availability, holds, bookings, its conversations' tours and their changes, and the figures.
    Chatbot,
    /// A leasing manager: their companies' figures and dashboard, and the staff view of a tour. No writes.
    Manager,
    /// The team that runs the system: everything.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Chatbot => "chatbot",
            Role::Manager => "manager",
            Role::Operator => "operator",
        }
    }

    /// Whether this role may do `action` (whose property or tour is then checked against the key's accounts).
    pub fn may(self, action: Action) -> bool {
        match self {
            Role::Chatbot | Role::Operator => true,
            Role::Manager => matches!(action, Action::ReadTour | Action::ReadFigures),
        }
    }
}

/// What an API request does, as roles are granted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ReadAvailability,
    Hold,
    Book,
    /// A conversation's tours.
    ReadConversation,
    /// One tour, with its history and messages.
    ReadTour,
    ChangeTour,
    /// A property's metrics and trends.
    ReadFigures,
}

/// One API key as the keys' secret holds it: a name, a role, the accounts it reaches, and the SHA-256 of the key
/// (the key itself is shown once, when issued, and kept nowhere).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub name: String,
    pub role: Role,
    pub accounts: Accounts,
    digest: [u8; 32],
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("accounts", &self.accounts)
            .finish_non_exhaustive()
    }
}

/// The shortest key accepted.
pub const MIN_KEY_CHARS: usize = 16;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialFile {
    name: String,
    role: Role,
    accounts: AccountsFile,
    key_sha256: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeyEntry {
    /// A key as written before roles: the chatbot's, for every account.
    Plain(String),
    Record(CredentialFile),
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

impl Credential {
    /// A new key's record: what the secret keeps for `key`.
    pub fn issue(name: &str, role: Role, accounts: Accounts, key: &str) -> Result<Credential, String> {
        if key.chars().count() < MIN_KEY_CHARS {
            return Err(format!("a key is shorter than {MIN_KEY_CHARS} characters"));
        }
        if name.trim().is_empty() {
            return Err("a key needs a name".into());
        }
        Ok(Credential {
            name: name.trim().to_owned(),
            role,
            accounts,
            digest: sha256(key.as_bytes()),
        })
    }

    /// The API keys' secret as written: a JSON array whose entries are records `{"name", "role", "accounts",
    /// "key_sha256"}` or (as before roles) plain keys of 16 characters or more, each the chatbot's for every account.
    pub fn parse_all(raw: &str) -> Result<Vec<Credential>, String> {
        let entries: Vec<KeyEntry> = serde_json::from_str(raw).map_err(|e| {
            format!(
                "not a JSON array of keys ({}): each a key of 16 characters or more, or \
                 {{name, role, accounts, key_sha256}}",
                place_of(&e)
            )
        })?;
        let mut all = Vec::new();
        for (n, entry) in entries.into_iter().enumerate() {
            match entry {
                KeyEntry::Plain(key) if key.is_empty() => {}
                KeyEntry::Plain(key) => all.push(Credential::issue(
                    &format!("key {}", n + 1),
                    Role::Chatbot,
                    Accounts::All,
                    &key,
                )?),
                KeyEntry::Record(file) => all.push(Credential::from_file(file)?),
            }
        }
        if all.is_empty() {
            return Err("no API key configured".into());
        }
        for (i, key) in all.iter().enumerate() {
            if all[..i].iter().any(|k| k.digest == key.digest) {
                return Err(format!("the key named {:?} is listed twice", key.name));
            }
        }
        Ok(all)
    }

    fn from_file(file: CredentialFile) -> Result<Credential, String> {
        let whose = format!("key {:?}", file.name);
        let mut digest = [0; 32];
        hex::decode_to_slice(&file.key_sha256, &mut digest)
            .map_err(|_| format!("{whose}: key_sha256 is not 64 hex digits"))?;
        Ok(Credential {
            accounts: file.accounts.read(&whose)?,
            name: file.name,
            role: file.role,
            digest,
        })
    }

    /// The record as the secret keeps it (and as one value of the rotating secret).
    pub fn to_value(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_json()).unwrap_or_default()
    }

    /// The record as JSON, for the secret.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(CredentialFile {
            name: self.name.clone(),
            role: self.role,
            accounts: AccountsFile::of(&self.accounts),
            key_sha256: hex::encode(self.digest),
        })
        .unwrap_or_default()
    }

    /// The keys a rotating secret accepts, from its values (current first, then retired ones within the grace). A
    /// retired value for a key that is still current is dropped: its current role and accounts are the ones that hold.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Credentials {
        let keys = values
            .into_iter()
            .filter_map(|value| serde_json::from_slice::<CredentialFile>(value).ok())
            .filter_map(|file| Credential::from_file(file).ok());
        Credentials(first_of_each(keys, |a, b| a.digest == b.digest))
    }
}

/// The keys accepted now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials(Vec<Credential>);

impl Credentials {
    /// The key presented, if it is one of ours. Every key's digest is compared, in constant time, so the time taken
    /// does not tell which came close.
    pub fn identify(&self, presented: Option<&[u8]>) -> Option<&Credential> {
        use subtle::ConstantTimeEq;
        let digest = sha256(presented?);
        self.0.iter().fold(None, |found, key| {
            if bool::from(key.digest.ct_eq(&digest)) {
                Some(key)
            } else {
                found
            }
        })
    }
}

impl Accounts {
    /// A scope as an operator types it: `*`, or AccountIDs and `default` separated by commas (`401,default`).
    pub fn parse_list(text: &str) -> Result<Accounts, String> {
        let text = text.trim();
        if text == "*" {
            return Ok(Accounts::All);
        }
        let list = text
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| match a.parse::<u64>() {
                Ok(id) => AccountFile::Id(id),
                Err(_) => AccountFile::Word(a.to_owned()),
            })
            .collect();
        AccountsFile::List(list).read("the accounts")
    }
}

impl std::fmt::Display for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Accounts::All => write!(f, "every company"),
            Accounts::Only(refs) => {
                let names: Vec<String> = refs
                    .iter()
                    .map(|r| match r {
                        AccountRef::Default => "default".to_owned(),
                        AccountRef::Id(id) => id.to_string(),
                    })
                    .collect();
                write!(f, "accounts {}", names.join(", "))
            }
        }
    }
}

/// The API keys' secret as an operator edits it: its entries in order, plain keys kept as written.
#[derive(Debug, Clone)]
pub struct KeyFile(Vec<serde_json::Value>);

impl KeyFile {
    pub fn parse(raw: &str) -> Result<KeyFile, String> {
        Credential::parse_all(raw)?;
        serde_json::from_str(raw)
            .map(KeyFile)
            .map_err(|_| "not a JSON array".into())
    }

    /// Every key, by name, role and reach (never a key or its digest).
    pub fn keys(&self) -> Vec<Credential> {
        Credential::parse_all(&self.to_json()).unwrap_or_default()
    }

    /// Adds `key` under a new name.
    pub fn issue(&mut self, name: &str, role: Role, accounts: Accounts, key: &str) -> Result<(), String> {
        let issued = Credential::issue(name, role, accounts, key)?;
        if self.keys().iter().any(|k| k.name == issued.name) {
            return Err(format!("a key named {:?} exists already", issued.name));
        }
        self.0.push(issued.to_json());
        Credential::parse_all(&self.to_json()).map(|_| ())
    }

    /// Removes the key named `name` (a plain key is named `key N` by its place).
    pub fn revoke(&mut self, name: &str) -> Result<(), String> {
        let names: Vec<String> = self.keys().into_iter().map(|k| k.name).collect();
        let mut kept = Vec::new();
        let mut place = 0;
        let mut found = false;
        for entry in &self.0 {
            let entry_name = match entry {
                serde_json::Value::String(key) if key.is_empty() => None,
                serde_json::Value::String(_) => {
                    place += 1;
                    Some(format!("key {place}"))
                }
                record => record["name"].as_str().map(|n| n.trim().to_owned()),
            };
            if entry_name.as_deref() == Some(name.trim()) {
                found = true;
            } else {
                kept.push(entry.clone());
            }
        }
        if !found {
            return Err(format!("no key is named {name:?} (the keys: {})", names.join(", ")));
        }
        let rest = KeyFile(kept);
        if rest.keys().is_empty() {
            return Err("that is the last key: issue another first".into());
        }
        *self = rest;
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
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

    #[test]
    fn a_plain_key_is_the_chatbots_for_every_company_and_a_record_holds_its_role_and_accounts() {
        let digest = hex::encode(sha256(b"manager-key-0123456789"));
        let raw = format!(
            r#"["chatbot-key-0123456789", {{"name": "Riverside manager", "role": "manager", "accounts": [401],
                "key_sha256": "{digest}"}}]"#
        );
        let keys = Credential::parse_all(&raw).unwrap();
        let accepted = Credential::from_values(
            keys.iter()
                .map(|k| k.to_value())
                .collect::<Vec<_>>()
                .iter()
                .map(Vec::as_slice),
        );
        let chatbot = accepted.identify(Some(b"chatbot-key-0123456789")).unwrap();
        assert_eq!((chatbot.role, &chatbot.accounts), (Role::Chatbot, &Accounts::All));
        let manager = accepted.identify(Some(b"manager-key-0123456789")).unwrap();
        assert_eq!(
            (manager.name.as_str(), manager.role),
            ("Riverside manager", Role::Manager)
        );
        assert!(manager.accounts.covers(id(401)) && !manager.accounts.covers(None));
        for wrong in [&b""[..], b"chatbot-key-012345678", b"manager-key-01234567890"] {
            assert!(accepted.identify(Some(wrong)).is_none());
        }
        assert!(accepted.identify(None).is_none());
        assert!(!format!("{accepted:?}").contains(&digest), "no digest in a debug line");
    }

    #[test]
    fn a_manager_reads_figures_and_tours_and_writes_nothing() {
        use Action::*;
        let all = [
            ReadAvailability,
            Hold,
            Book,
            ReadConversation,
            ReadTour,
            ChangeTour,
            ReadFigures,
        ];
        let allowed = |role: Role| all.iter().copied().filter(|a| role.may(*a)).collect::<Vec<_>>();
        assert_eq!(allowed(Role::Manager), vec![ReadTour, ReadFigures]);
        assert_eq!(allowed(Role::Chatbot), all.to_vec());
        assert_eq!(allowed(Role::Operator), all.to_vec());
    }

    #[test]
    fn a_keys_file_with_a_mistake_names_it_and_never_quotes_a_key() {
        for (raw, says) in [
            ("[]", "no API key"),
            (r#"["short"]"#, "shorter"),
            (r#"["same-key-0123456789", "same-key-0123456789"]"#, "twice"),
            (
                r#"[{"name":"m","role":"boss","accounts":"*","key_sha256":"00"}]"#,
                "JSON array of keys",
            ),
            (
                r#"[{"name":"m","role":"manager","accounts":"*","key_sha256":"00"}]"#,
                "64 hex",
            ),
            (
                r#"[{"name":"m","role":"manager","accounts":[],"key_sha256":"00"}]"#,
                "64 hex",
            ),
            ("not json secret-value-0123", "JSON array of keys"),
        ] {
            let err = Credential::parse_all(raw).unwrap_err();
            assert!(err.contains(says), "{raw}: {err}");
            assert!(!err.contains("secret-value") && !err.contains("same-key"), "{err}");
        }
    }

    #[test]
    fn a_narrowed_key_holds_at_once_through_the_rotation_grace() {
        let wide = Credential::issue("m", Role::Operator, Accounts::All, "the-same-key-0123456789").unwrap();
        let narrow = Credential {
            role: Role::Manager,
            ..wide.clone()
        };
        let (current, retired) = (narrow.to_value(), wide.to_value());
        let accepted = Credential::from_values([current.as_slice(), retired.as_slice()]);
        assert_eq!(
            accepted.identify(Some(b"the-same-key-0123456789")).unwrap().role,
            Role::Manager
        );
    }

    #[test]
    fn an_operator_issues_lists_and_revokes_keys_and_the_file_keeps_no_key() {
        let mut file = KeyFile::parse(r#"["chatbot-key-0123456789"]"#).unwrap();
        file.issue(
            "Riverside manager",
            Role::Manager,
            Accounts::parse_list("401").unwrap(),
            "new-manager-key-0123456789",
        )
        .unwrap();
        assert!(!file.to_json().contains("new-manager-key"), "only its digest is kept");
        let names: Vec<(String, Role, String)> = file
            .keys()
            .into_iter()
            .map(|k| (k.name, k.role, k.accounts.to_string()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("key 1".to_owned(), Role::Chatbot, "every company".to_owned()),
                ("Riverside manager".to_owned(), Role::Manager, "accounts 401".to_owned())
            ]
        );
        let accepted = KeyFile::parse(&file.to_json()).unwrap();
        let values: Vec<Vec<u8>> = accepted.keys().iter().map(Credential::to_value).collect();
        let keys = Credential::from_values(values.iter().map(Vec::as_slice));
        assert_eq!(
            keys.identify(Some(b"new-manager-key-0123456789")).unwrap().name,
            "Riverside manager"
        );
        assert!(
            file.issue(
                "Riverside manager",
                Role::Manager,
                Accounts::All,
                "another-key-0123456789"
            )
            .is_err()
        );
        assert!(file.revoke("nobody").unwrap_err().contains("key 1, Riverside manager"));
        file.revoke("key 1").unwrap();
        assert!(file.revoke("Riverside manager").unwrap_err().contains("last key"));
        assert_eq!(file.keys().len(), 1, "a refused revocation changes nothing");
        assert_eq!(Accounts::parse_list(" * ").unwrap(), Accounts::All);
        assert_eq!(
            Accounts::parse_list("default, 401").unwrap().to_string(),
            "accounts default, 401"
        );
        assert!(Accounts::parse_list("riverside").is_err());
    }
}
