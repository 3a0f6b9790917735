//! The staff's status page (`/status`): server-rendered HTML, no script, counts only. It is
//! built from figures the registry gives, so nothing personal can reach it (no national
//! number, no affiliate, no login, no address).

use std::fmt::Write;

use crate::registry::{StatusFigures, TOP_CODES};

/// Every upload status, in the order the page lists them.
const STATUSES: [&str; 7] = ["received", "processing", "accepted", "rejected", "duplicate", "failed", "withdrawn"];

/// How the instance is, as `/readyz` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub registry: bool,
    pub storage: bool,
    pub draining: bool,
}

pub struct StatusView<'a> {
    pub health: &'a Health,
    /// `None` when the registry did not answer.
    pub figures: Option<&'a StatusFigures>,
    pub now: i64,
}

pub fn render(view: &StatusView<'_>) -> String {
    let mut page = String::with_capacity(8 * 1024);
    page.push_str(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>pension-gateway status</title>",
        "<style>body{font-family:sans-serif;margin:1.5em;color:#222}",
        "table{border-collapse:collapse;margin-bottom:1.5em}",
        "th,td{border:1px solid #bbb;padding:.3em .7em;text-align:left}",
        "td.n{text-align:right}.bad{color:#a00;font-weight:bold}.good{color:#070}",
        "section{margin-bottom:1em}</style></head><body>\n",
        "<h1>pension-gateway status</h1>\n",
    ));
    let _ = writeln!(
        page,
        "<p id=\"generated\">Generated at {} UTC by version {}.</p>",
        timestamp(view.now),
        env!("CARGO_PKG_VERSION")
    );
    health_section(&mut page, view.health);
    match view.figures {
        Some(figures) => {
            uploads_section(&mut page, figures);
            organisations_section(&mut page, figures);
            work_section(&mut page, figures, view.now);
        }
        None => {
            page.push_str("<p id=\"figures-missing\" class=\"bad\">The registry does not answer: no figures.</p>\n")
        }
    }
    page.push_str("</body></html>\n");
    page
}

fn health_section(page: &mut String, health: &Health) {
    let state = |ok: bool, good: &str, bad: &str| {
        if ok {
            format!("<span class=\"good\">{good}</span>")
        } else {
            format!("<span class=\"bad\">{bad}</span>")
        }
    };
    let _ = writeln!(
        page,
        "<section><h2>Instance</h2><table id=\"health\">\
         <tr><th>Registry</th><td id=\"health-registry\">{}</td></tr>\
         <tr><th>Storage</th><td id=\"health-storage\">{}</td></tr>\
         <tr><th>Serving</th><td id=\"health-serving\">{}</td></tr></table></section>",
        state(health.registry, "answers", "does not answer"),
        state(health.storage, "answers", "does not answer"),
        state(!health.draining, "serving", "draining"),
    );
}

fn uploads_section(page: &mut String, figures: &StatusFigures) {
    let count =
        |list: &[(String, i64)], status: &str| list.iter().find(|(s, _)| s == status).map(|(_, n)| *n).unwrap_or(0);
    page.push_str(
        "<section><h2>Uploads</h2><table id=\"uploads\"><tr><th>Status</th><th>Today</th><th>This week</th></tr>\n",
    );
    for status in STATUSES {
        let _ = writeln!(
            page,
            "<tr><th>{status}</th><td class=\"n\" id=\"uploads-today-{status}\">{}</td>\
             <td class=\"n\" id=\"uploads-week-{status}\">{}</td></tr>",
            count(&figures.uploads_today, status),
            count(&figures.uploads_this_week, status),
        );
    }
    page.push_str("</table></section>\n");
}

fn organisations_section(page: &mut String, figures: &StatusFigures) {
    page.push_str("<section><h2>Organisations, last 30 days</h2>\n");
    if figures.organisations.is_empty() {
        page.push_str("<p id=\"organisations-none\">No upload in the last 30 days.</p></section>\n");
        return;
    }
    let _ = writeln!(
        page,
        "<table id=\"organisations\"><tr><th>Enterprise</th><th>Name</th><th>Processed</th><th>Rejected</th>\
         <th>Rejection rate</th><th>Top {TOP_CODES} error codes</th></tr>"
    );
    for organisation in &figures.organisations {
        let rate = if organisation.processed > 0 {
            format!("{:.0} %", 100.0 * organisation.rejected as f64 / organisation.processed as f64)
        } else {
            "–".to_string()
        };
        let codes: Vec<String> = organisation
            .top_codes
            .iter()
            .map(|(code, n)| format!("<code class=\"finding\">{}</code> × {n}", escape(code)))
            .collect();
        let id = escape(&organisation.enterprise_number);
        let _ = writeln!(
            page,
            "<tr id=\"organisation-{id}\"><td>{id}</td><td>{}</td><td class=\"n\" id=\"organisation-{id}-processed\">{}</td>\
             <td class=\"n\" id=\"organisation-{id}-rejected\">{}</td><td class=\"n\" id=\"organisation-{id}-rate\">{rate}</td>\
             <td id=\"organisation-{id}-codes\">{}</td></tr>",
            escape(&organisation.name),
            organisation.processed,
            organisation.rejected,
            codes.join(", "),
        );
    }
    page.push_str("</table></section>\n");
}

fn work_section(page: &mut String, figures: &StatusFigures, now: i64) {
    let since = |at: Option<i64>| at.map(|at| format!("for {}", duration(now - at))).unwrap_or_else(|| "–".into());
    let bans = if figures.active_bans.is_empty() {
        "none".to_string()
    } else {
        figures.active_bans.iter().map(|(kind, n)| format!("{n} by {}", escape(kind))).collect::<Vec<_>>().join(", ")
    };
    let total_bans: i64 = figures.active_bans.iter().map(|(_, n)| n).sum();
    let _ = writeln!(
        page,
        "<section><h2>Waiting work</h2><table id=\"work\">\
         <tr><th>Ingestion queued</th><td class=\"n\" id=\"queue-queued\">{}</td><td id=\"queue-oldest\">{}</td></tr>\
         <tr><th>Ingestion running</th><td class=\"n\" id=\"queue-running\">{}</td><td></td></tr>\
         <tr><th>Access requests pending</th><td class=\"n\" id=\"access-requests-pending\">{}</td><td></td></tr>\
         <tr><th>Mail not yet delivered</th><td class=\"n\" id=\"mail-pending\">{}</td><td id=\"mail-oldest\">{}</td></tr>\
         <tr><th>Mail given up</th><td class=\"n{}\" id=\"mail-failed\">{}</td><td></td></tr>\
         <tr><th>Active bans</th><td class=\"n\" id=\"bans-active\">{total_bans}</td><td id=\"bans-detail\">{bans}</td></tr>\
         </table></section>",
        figures.queue.queued,
        since(figures.queue.oldest_queued_at),
        figures.queue.running,
        figures.pending_access_requests,
        figures.mail.pending,
        since(figures.mail.oldest_pending_at),
        if figures.mail.failed > 0 { " bad" } else { "" },
        figures.mail.failed,
    );
}

fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=7199 => format!("{} min", seconds / 60),
        7200..=172_799 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

fn timestamp(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]")).ok())
        .unwrap_or_else(|| seconds.to_string())
}

/// Escapes text for an HTML element or a quoted attribute.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{MailFigures, OrganisationFigures, QueueFigures};

    fn healthy() -> Health {
        Health { registry: true, storage: true, draining: false }
    }

    #[test]
    fn names_from_the_registry_are_escaped() {
        let figures = StatusFigures {
            organisations: vec![OrganisationFigures {
                enterprise_number: "0403170701".into(),
                name: "<script>alert(1)</script> & Cie".into(),
                processed: 4,
                rejected: 1,
                top_codes: vec![("niss-invalid".into(), 3)],
            }],
            ..StatusFigures::default()
        };
        let page = render(&StatusView { health: &healthy(), figures: Some(&figures), now: 1_796_342_400 });
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Cie"));
        assert!(page.contains("id=\"organisation-0403170701-rate\">25 %</td>"));
        assert!(page.contains("<code class=\"finding\">niss-invalid</code> × 3"));
    }

    #[test]
    fn every_status_is_listed_and_waiting_work_shows_its_age() {
        let figures = StatusFigures {
            uploads_today: vec![("rejected".into(), 2)],
            uploads_this_week: vec![("accepted".into(), 5), ("rejected".into(), 2)],
            queue: QueueFigures { queued: 3, running: 1, oldest_queued_at: Some(1_000 - 600) },
            mail: MailFigures { pending: 1, failed: 2, oldest_pending_at: Some(1_000 - 30) },
            active_bans: vec![("address".into(), 2), ("login".into(), 1)],
            ..StatusFigures::default()
        };
        let page = render(&StatusView { health: &healthy(), figures: Some(&figures), now: 1_000 });
        for status in STATUSES {
            assert!(page.contains(&format!("id=\"uploads-today-{status}\"")), "{status}");
        }
        assert!(page.contains("id=\"uploads-today-accepted\">0<"));
        assert!(page.contains("id=\"uploads-week-accepted\">5<"));
        assert!(page.contains("id=\"queue-oldest\">for 10 min<"));
        assert!(page.contains("id=\"mail-oldest\">for 30 s<"));
        assert!(page.contains("id=\"bans-active\">3<"));
        assert!(page.contains("id=\"organisations-none\""));
    }

    #[test]
    fn a_registry_that_does_not_answer_is_said_plainly() {
        let health = Health { registry: false, storage: true, draining: true };
        let page = render(&StatusView { health: &health, figures: None, now: 0 });
        assert!(page.contains("id=\"health-registry\"><span class=\"bad\">does not answer"));
        assert!(page.contains("id=\"health-serving\"><span class=\"bad\">draining"));
        assert!(page.contains("id=\"figures-missing\""));
    }
}
