//! The defender at work: failed logins scored per source address and per login in the
//! registry (shared by every instance), bans checked before key exchange, a suspended login
//! told once by mail. Every ban is audited; the rules are `auth::defender`'s.

use std::net::IpAddr;

use crate::auth::defender::{Failure, Subject};
use crate::domain::{AuditAction, AuditOutcome, Login};
use crate::registry::{AccountRef, BanRecord, Scored, Scoring};

use super::{Gateway, SessionContext};

impl Gateway {
    /// Whether connections from `address` are refused now. A registry that cannot answer
    /// lets the connection through (logins still need the registry).
    pub async fn address_banned(&self, address: IpAddr) -> bool {
        if !self.defender.enabled || self.defender.allowed(address) {
            return false;
        }
        let now = crate::clock::now_seconds();
        match self.registry.active_ban(Subject::Address.as_str(), &address.to_string(), now).await {
            Ok(ban) => ban.is_some(),
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the defender's bans");
                false
            }
        }
    }

    /// Whether the password logins of `login` are suspended now.
    pub(super) async fn password_logins_suspended(&self, login: &Login) -> bool {
        if !self.defender.enabled {
            return false;
        }
        let now = crate::clock::now_seconds();
        matches!(self.registry.active_ban(Subject::Login.as_str(), login.as_str(), now).await, Ok(Some(_)))
    }

    /// Scores a refused password login: its source address (unless allowed) and, for a login
    /// that exists, the login, whose refusal comes later the more wrong passwords it had.
    pub(super) async fn score_refused_login(&self, login: Option<&Login>, failure: Failure, context: &SessionContext) {
        if !self.defender.enabled {
            return;
        }
        let address = context.remote_addr.ip();
        if !self.defender.allowed(address) {
            if let Some(ban) = self.score(Subject::Address, &address.to_string(), failure).await.and_then(|s| s.ban) {
                self.audit_ban(&ban, context);
            }
        }
        if let (Some(login), Failure::WrongPassword) = (login, failure) {
            match self.score(Subject::Login, login.as_str(), failure).await {
                Some(Scored { ban: Some(ban), .. }) => {
                    self.audit_ban(&ban, context);
                    self.tell_suspended(login, &ban).await;
                }
                // Only this connection waits: the guesser's next try comes later, the owner's
                // other sessions are not held.
                Some(Scored { score, ban: None }) => tokio::time::sleep(self.defender.slowdown(score)).await,
                None => {}
            }
        }
    }

    /// Scores an address whose connection was refused over a limit (the first refusal of a
    /// window only: a flood costs the registry one write a minute per address).
    pub async fn score_over_limit(&self, context: &SessionContext) {
        if self.defender.enabled && !self.defender.allowed(context.remote_addr.ip()) {
            if let Some(ban) = self
                .score(Subject::Address, &context.remote_addr.ip().to_string(), Failure::OverLimit)
                .await
                .and_then(|s| s.ban)
            {
                self.audit_ban(&ban, context);
            }
        }
    }

    /// `None` when the registry could not count it (logged).
    async fn score(&self, subject: Subject, name: &str, failure: Failure) -> Option<Scored> {
        let scoring = Scoring {
            weight: i64::from(self.defender.weight(failure)),
            window_seconds: i64::try_from(self.defender.window.as_secs()).unwrap_or(i64::MAX),
            threshold: i64::from(self.defender.threshold(subject)),
            ban_seconds: self.defender.ban_seconds(),
        };
        let reason = match failure {
            Failure::WrongPassword => "wrong passwords",
            Failure::UnknownLogin => "unknown logins",
            Failure::OverLimit => "over limits",
        };
        let now = crate::clock::now_seconds();
        match self.registry.score_failure(subject.as_str(), name, now, scoring, reason).await {
            Ok(scored) => Some(scored),
            Err(error) => {
                tracing::warn!(error = %error, "cannot record a failed login for the defender");
                None
            }
        }
    }

    fn audit_ban(&self, ban: &BanRecord, context: &SessionContext) {
        let minutes = (ban.banned_until - ban.banned_at) / 60;
        let what = match Subject::parse(&ban.subject_kind) {
            Some(Subject::Login) => format!("password logins of {} suspended", ban.subject),
            _ => format!("address {} banned", ban.subject),
        };
        tracing::warn!(subject = %ban.subject_kind, minutes, count = ban.ban_count, "defender ban");
        let metrics = crate::telemetry::metrics::metrics();
        crate::telemetry::metrics::Metrics::count(&metrics.bans, "subject", &ban.subject_kind, 1);
        self.audit_event(
            None,
            context,
            AuditAction::Ban,
            None,
            AuditOutcome::Ok,
            Some(format!("{what} for {minutes} min (ban {} of this subject) after {}", ban.ban_count, ban.reason)),
        );
    }

    /// Tells the owner of a suspended login, once per suspension, in their language.
    async fn tell_suspended(&self, login: &Login, ban: &BanRecord) {
        let minutes = (ban.banned_until - ban.banned_at) / 60;
        let recipient = match self.registry.login_account(login).await {
            Ok(Some(account)) => match account.account {
                AccountRef::User { .. } => self.registry.user(login).await.ok().map(|user| (user.email, user.language)),
                AccountRef::Staff { .. } => {
                    self.registry.staff(login).await.ok().map(|staff| (staff.email, staff.language))
                }
            },
            _ => None,
        };
        if let Some((email, language)) = recipient {
            let message = crate::notify::messages::password_logins_suspended(language, login, minutes);
            if let Err(error) = self.outbox.queue(vec![(email, message)]).await {
                tracing::warn!(error = %error, "cannot queue the mail about a suspended login");
            }
        }
    }
}
