//! Parsers of command-line values (clap `value_parser`s).

use super::prelude::*;

pub fn parse_profile(text: &str) -> Result<Profile, String> {
    text.parse().map_err(|e: pension_gateway::domain::InvalidIdentifier| e.to_string())
}

pub fn parse_language(text: &str) -> Result<Language, String> {
    text.parse().map_err(|e: pension_gateway::domain::InvalidIdentifier| e.to_string())
}

pub fn parse_date(text: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, format).map_err(|_| format!("{text:?} is not a date in the form YYYY-MM-DD"))
}

pub fn parse_year(text: &str) -> Result<pension_gateway::domain::Year, String> {
    pension_gateway::domain::Year::parse(text).map_err(|_| format!("{text:?} is not a year such as 2026"))
}
