//! Reminders to master users before an external user's access ends (DOMAIN.md §1.5: the
//! master user alone answers for external accesses). One reminder per user and end date.

use time::Duration;

use crate::clock::Clock;
use crate::domain::AccountStatus;
use crate::notify::{messages, Outbox};
use crate::registry::{format_date, Registry, RegistryError};

#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Sends the reminders due today; returns how many external users were reminded of.
pub async fn send_expiry_reminders(
    registry: &Registry,
    outbox: &Outbox,
    clock: &Clock,
    days_before: i64,
) -> Result<usize, ReminderError> {
    let today = clock.today();
    let due = registry.externals_to_remind(today, today + Duration::days(days_before)).await?;
    let mut reminded = 0;
    for external in &due {
        let Some(last_day) = external.expires_on else {
            continue;
        };
        let masters: Vec<_> = registry
            .users(Some(external.organisation_id))
            .await?
            .into_iter()
            .filter(|u| u.master && u.status == AccountStatus::Active && u.id != external.id)
            .collect();
        let shown_date = format_date(last_day);
        let mut mail: Vec<_> = masters
            .iter()
            .map(|m| (m.email.clone(), messages::expiry_reminder(m.language, &external.login, &shown_date)))
            .collect();
        if masters.is_empty() {
            // Without a master user, the convention's notification address is told instead.
            let organisation = registry.organisation(external.organisation_id).await?;
            mail.push((
                organisation.notify_email.clone(),
                messages::expiry_reminder(organisation.language, &external.login, &shown_date),
            ));
        }
        // Another instance may have reminded of this date since `due` was read: then this one
        // queues nothing.
        if outbox.queue_reminder_once(external.id, last_day, mail).await? {
            reminded += 1;
        }
    }
    Ok(reminded)
}
