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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn login(text: &str) -> Login {
        Login::parse(text).unwrap()
    }

    fn row(number: u32, action: &str, who: &str, more: &[(&str, Value)]) -> ValidRow {
        let mut values = BTreeMap::new();
        values.insert("action".into(), Value::Choice(action.into()));
        values.insert("login".into(), Value::Login(login(who)));
        for (key, value) in more {
            values.insert((*key).into(), value.clone());
        }
        ValidRow { number, values }
    }

    fn facts() -> OrganisationFacts {
        let mut users = HashMap::new();
        users.insert(login("master.one"), KnownUser { master: true, active: true });
        users.insert(login("clerk"), KnownUser { master: false, active: true });
        users.insert(login("gone"), KnownUser { master: false, active: false });
        OrganisationFacts {
            contracts: [ContractNumber::parse("GP-1001").unwrap()].into(),
            taken_logins: users.keys().cloned().chain([login("elsewhere")]).collect(),
            users,
        }
    }

    fn codes(findings: &[Finding]) -> Vec<(Option<u32>, FindingCode)> {
        findings.iter().map(|f| (f.row, f.code)).collect()
    }

    #[test]
    fn a_clean_sheet_becomes_rows_with_what_each_one_asks() {
        let day = Date::from_calendar_date(2026, time::Month::December, 31).unwrap();
        let rows = [
            row(
                2,
                "ADD",
                "new.one",
                &[
                    ("first_name", Value::Text("Anne".into())),
                    ("last_name", Value::Text("Peeters".into())),
                    ("contracts", Value::Contracts(Scope::parse("GP-1001").unwrap())),
                    ("external", Value::Choice("Y".into())),
                    ("valid_until", Value::Date(day)),
                ],
            ),
            row(3, "MODIFY", "clerk", &[("external", Value::Choice("N".into()))]),
            row(4, "REMOVE", "master.one", &[]),
        ];
        let mut with_second_master = facts();
        with_second_master.users.insert(login("master.two"), KnownUser { master: true, active: true });
        let (sheet, findings) = check(&rows, &with_second_master);
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(sheet.len(), 3);
        assert_eq!((sheet[0].action, sheet[0].name.as_deref()), (SheetAction::Add, Some("Anne Peeters")));
        assert_eq!(sheet[0].external_until, Some(Some(day)));
        assert_eq!(sheet[1].external_until, Some(None), "N ends an external access");
        assert_eq!(sheet[2].action, SheetAction::Remove);
    }

    #[test]
    fn each_rule_of_the_organisation_has_its_finding_on_its_row() {
        let rows = [
            row(2, "ADD", "elsewhere", &[]),
            row(3, "MODIFY", "gone", &[]),
            row(4, "REMOVE", "nobody", &[]),
            row(5, "ADD", "twice", &[("contracts", Value::Contracts(Scope::parse("GP-1001,GP-9999").unwrap()))]),
            row(6, "ADD", "twice", &[]),
        ];
        let (_, findings) = check(&rows, &facts());
        assert_eq!(
            codes(&findings),
            vec![
                (Some(2), FindingCode::LoginTaken),
                (Some(3), FindingCode::UnknownUser),
                (Some(4), FindingCode::UnknownUser),
                (Some(5), FindingCode::ContractNotOfOrganisation),
                (Some(6), FindingCode::DuplicateLogin),
            ]
        );
        let foreign = findings.iter().find(|f| f.code == FindingCode::ContractNotOfOrganisation).unwrap();
        assert!(foreign.params.iter().any(|(key, value)| *key == "value" && value == "GP-9999"));
    }

    #[test]
    fn removing_every_active_master_user_is_refused_on_each_of_those_rows() {
        let rows = [row(7, "REMOVE", "master.one", &[])];
        let (_, findings) = check(&rows, &facts());
        assert_eq!(codes(&findings), vec![(Some(7), FindingCode::LastMaster)]);
    }
}
