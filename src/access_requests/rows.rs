//! User sheets (DOMAIN.md §5): rows ADD / MODIFY / REMOVE sent by an organisation's master
//! user, checked against the organisation (its contracts, its users, the logins in use, its
//! last master user) after the generic validation of the schema. Pure.

use std::collections::{BTreeSet, HashMap, HashSet};

use time::Date;

use crate::domain::{ContractNumber, EmailAddress, Language, Login, Profile, Scope};

use crate::ingest::finding_code::FindingCode;
use crate::ingest::validate::{Finding, ValidRow, Value};

/// What a row asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SheetAction {
    Add,
    Modify,
    Remove,
}

/// A checked row of a user sheet.
#[derive(Debug, Clone)]
pub struct SheetRow {
    pub row: u32,
    pub action: SheetAction,
    pub login: Login,
    pub name: Option<String>,
    pub email: Option<EmailAddress>,
    pub language: Option<Language>,
    pub profile: Option<Profile>,
    pub scope: Option<Scope>,
    /// `None`: the row says nothing; `Some(None)`: not external; `Some(Some(day))`: external
    /// until that day.
    pub external_until: Option<Option<Date>>,
    pub public_key: Option<String>,
}

/// A user of the organisation, as the check needs it.
#[derive(Debug, Clone)]
pub struct KnownUser {
    pub master: bool,
    pub active: bool,
}

/// The organisation's side of the check.
#[derive(Debug, Clone, Default)]
pub struct OrganisationFacts {
    pub contracts: BTreeSet<ContractNumber>,
    pub users: HashMap<Login, KnownUser>,
    /// Every login in use, in any organisation and among staff.
    pub taken_logins: HashSet<Login>,
}

/// Turns validated rows into sheet rows, adding the organisation-level findings.
pub fn check(rows: &[ValidRow], facts: &OrganisationFacts) -> (Vec<SheetRow>, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut sheet_rows = Vec::new();
    let mut seen: HashMap<Login, u32> = HashMap::new();
    for row in rows {
        let Some(Value::Login(login)) = row.get("login") else {
            continue;
        };
        let action = match row.text("action") {
            Some("ADD") => SheetAction::Add,
            Some("MODIFY") => SheetAction::Modify,
            Some("REMOVE") => SheetAction::Remove,
            _ => continue,
        };
        let at = |column: &str, code| Finding::error(Some(row.number), Some(column), code);
        if let Some(other) = seen.get(login) {
            findings.push(
                at("login", FindingCode::DuplicateLogin)
                    .with("value", login.to_string())
                    .with("other_row", other.to_string()),
            );
        }
        seen.insert(login.clone(), row.number);
        let known = facts.users.get(login).filter(|u| u.active);
        match (action, known) {
            (SheetAction::Add, _) if facts.taken_logins.contains(login) => {
                findings.push(at("login", FindingCode::LoginTaken).with("value", login.to_string()));
            }
            (SheetAction::Modify | SheetAction::Remove, None) => {
                findings.push(at("login", FindingCode::UnknownUser).with("value", login.to_string()));
            }
            _ => {}
        }
        let scope = match row.get("contracts") {
            Some(Value::Contracts(scope)) => Some(scope.clone()),
            _ => None,
        };
        if let Some(Scope::Contracts(list)) = &scope {
            for contract in list.iter().filter(|c| !facts.contracts.contains(*c)) {
                findings
                    .push(at("contracts", FindingCode::ContractNotOfOrganisation).with("value", contract.to_string()));
            }
        }
        let name = match (row.text("first_name"), row.text("last_name")) {
            (Some(first), Some(last)) => Some(format!("{first} {last}")),
            (None, Some(last)) => Some(last.to_string()),
            (Some(first), None) => Some(first.to_string()),
            (None, None) => None,
        };
        sheet_rows.push(SheetRow {
            row: row.number,
            action,
            login: login.clone(),
            name,
            email: match row.get("email") {
                Some(Value::Email(email)) => Some(email.clone()),
                _ => None,
            },
            language: row.text("language").and_then(|l| l.parse().ok()),
            profile: row.text("profile").and_then(|p| p.parse().ok()),
            scope,
            external_until: match (row.text("external"), row.date("valid_until")) {
                (Some("N"), _) => Some(None),
                (_, Some(day)) => Some(Some(day)),
                // "Y" without a date breaks the schema's `required_when`: not a valid row.
                (_, None) => None,
            },
            public_key: match row.get("public_key") {
                Some(Value::PublicKey(key)) => Some(key.clone()),
                _ => None,
            },
        });
    }
    // The organisation keeps at least one active master user.
    let masters: Vec<&Login> = facts.users.iter().filter(|(_, u)| u.master && u.active).map(|(l, _)| l).collect();
    let removed: Vec<&SheetRow> =
        sheet_rows.iter().filter(|r| r.action == SheetAction::Remove && masters.contains(&&r.login)).collect();
    if !masters.is_empty() && removed.len() == masters.len() {
        for row in removed {
            findings.push(
                Finding::error(Some(row.row), Some("login"), FindingCode::LastMaster)
                    .with("value", row.login.to_string()),
            );
        }
    }
    (sheet_rows, findings)
}
