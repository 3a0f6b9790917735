//! How commands print: JSON for scripts, aligned text for people, progress lines.

use super::prelude::*;

pub fn print_json(value: serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
}

pub fn format_time(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

pub fn organisation_json(o: &OrganisationRecord) -> serde_json::Value {
    json!({
        "enterprise_number": o.enterprise_number.as_str(),
        "name": o.name,
        "notify_email": o.notify_email.as_str(),
        "status": o.status.as_str(),
        "created_at": format_time(o.created_at),
    })
}

pub fn contract_json(c: &ContractRecord) -> serde_json::Value {
    json!({ "number": c.number.as_str(), "title": c.title })
}

pub fn user_json(u: &UserRecord) -> serde_json::Value {
    json!({
        "login": u.login.as_str(),
        "name": u.name,
        "email": u.email.as_str(),
        "language": u.language.as_str(),
        "profile": u.profile.as_str(),
        "contracts": u.scope.to_string(),
        "master": u.master,
        "external": u.external,
        "expires_on": u.expires_on.map(|d| d.to_string()),
        "status": u.status.as_str(),
        "last_login_at": u.last_login_at.map(format_time),
    })
}

pub fn upload_json(u: &UploadRecord) -> serde_json::Value {
    json!({
        "id": u.id,
        "contract": u.contract.as_str(),
        "kind": u.kind,
        "file_name": u.file_name,
        "uploader": u.uploader,
        "size": u.size,
        "sha256": u.sha256,
        "status": u.status.as_str(),
        "received_at": format_time(u.received_at),
        "rows": u.data_rows,
        "errors": u.error_count,
        "warnings": u.warning_count,
        "processed_at": u.processed_at.map(format_time),
    })
}

/// `progress(done, total)` as a line redrawn on a terminal; nothing otherwise.
pub fn progress_line(verb: &'static str) -> impl FnMut(usize, usize) {
    let on_terminal = std::io::stderr().is_terminal();
    move |done, total| {
        if on_terminal && (done == total || done % 10 == 0) {
            eprint!("\r{verb} {done}/{total}");
            if done == total {
                eprintln!();
            }
        }
    }
}
