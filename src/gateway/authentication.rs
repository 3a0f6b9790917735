//! Who is logging in. Every path (password, public key offered, public key verified) checks
//! the same rules: the account exists and is active, its organisation is active, and an
//! external user's end date has not passed. Refusals look the same whatever the reason; the
//! reason goes to the audit log only.

use std::collections::BTreeSet;

use crate::access::{Principal, Role};
use crate::auth::defender::Failure;
use crate::auth::passwords::verify_password;
use crate::domain::{AuditAction, AuditOutcome, Login, Scope};
use crate::registry::{AccountRef, LoginAccount, SessionAccount};
use crate::telemetry::metrics::metrics;

use super::{Gateway, GatewayError, SessionContext};

/// How the client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    PublicKey,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::PublicKey => "publickey",
        }
    }
}

impl Gateway {
    /// Checks a login and password; `None` is a refusal (already audited).
    pub async fn authenticate_password(
        &self,
        login_text: &str,
        password: &str,
        context: &SessionContext,
    ) -> Option<Principal> {
        let login = Login::parse(login_text).ok();
        let account = match &login {
            Some(login) => self.login_account(login).await,
            None => Ok(None),
        };
        let suspended = match &login {
            Some(login) => self.password_logins_suspended(login).await,
            None => false,
        };
        let hash = account.as_ref().ok().and_then(|a| a.as_ref()).and_then(|a| a.password_hash.clone());
        let matches = self.verify_password_bounded(password.to_string(), hash).await;
        let verdict = match account {
            Err(reason) => Err(reason),
            Ok(None) => Err("unknown-login"),
            // Even the right password: the suspension ends on its own (key logins still work).
            Ok(Some(_)) if suspended => Err("password-logins-suspended"),
            Ok(Some(_)) if !matches => Err("wrong-password"),
            Ok(Some(account)) => self.usable(account),
        };
        match verdict {
            Err("unknown-login" | "invalid-login") => {
                self.score_refused_login(None, Failure::UnknownLogin, context).await
            }
            Err("wrong-password") => self.score_refused_login(login.as_ref(), Failure::WrongPassword, context).await,
            _ => {}
        }
        self.conclude(login, login_text, verdict, Method::Password, context).await
    }

    /// Answers a client asking whether a key would be accepted, before it signs anything:
    /// yes only for a key registered to that very login, on a usable account.
    pub async fn public_key_acceptable(&self, login_text: &str, fingerprint: &str, context: &SessionContext) -> bool {
        let verdict = self.public_key_verdict(login_text, fingerprint).await;
        if let Err(reason) = verdict {
            self.audit_refused_login(login_text, AuditAction::LoginKeyOffered, reason, context);
        }
        verdict.is_ok()
    }

    /// Checks a public key whose signature russh verified; `None` is a refusal (audited).
    pub async fn authenticate_public_key(
        &self,
        login_text: &str,
        fingerprint: &str,
        context: &SessionContext,
    ) -> Option<Principal> {
        let verdict = self.public_key_verdict(login_text, fingerprint).await;
        self.conclude(Login::parse(login_text).ok(), login_text, verdict, Method::PublicKey, context).await
    }

    /// The account a key opens for a login, or the reason it opens none.
    async fn public_key_verdict(&self, login_text: &str, fingerprint: &str) -> Result<LoginAccount, &'static str> {
        let login = Login::parse(login_text).map_err(|_| "invalid-login")?;
        match self.registry.public_key_owner(fingerprint).await {
            Err(_) => Err("registry-unavailable"),
            Ok(None) => Err("unknown-key"),
            Ok(Some(owner)) if owner != login => Err("key-of-another-login"),
            Ok(Some(_)) => match self.login_account(&login).await? {
                None => Err("unknown-login"),
                Some(account) => self.usable(account),
            },
        }
    }

    /// Records a refused login. The attempted login is kept only when it exists: anything else
    /// could be a password typed into the user field.
    fn audit_refused_login(&self, login_text: &str, action: AuditAction, reason: &str, context: &SessionContext) {
        let actor = match (reason, Login::parse(login_text)) {
            ("unknown-login" | "invalid-login", _) | (_, Err(_)) => "(unknown)".to_string(),
            (_, Ok(login)) => login.to_string(),
        };
        let mut event = self.session_event(None, context, action, None, AuditOutcome::Refused, Some(reason.into()));
        event.actor = actor;
        self.audit.record(event);
    }

    async fn login_account(&self, login: &Login) -> Result<Option<LoginAccount>, &'static str> {
        self.registry.login_account(login).await.map_err(|error| {
            tracing::error!(error = %error, "login lookup failed");
            "registry-unavailable"
        })
    }

    fn usable(&self, account: LoginAccount) -> Result<LoginAccount, &'static str> {
        match account.refusal(self.clock.today()) {
            Some(reason) => Err(reason),
            None => Ok(account),
        }
    }

    async fn conclude(
        &self,
        login: Option<Login>,
        login_text: &str,
        verdict: Result<LoginAccount, &'static str>,
        method: Method,
        context: &SessionContext,
    ) -> Option<Principal> {
        let principal = match (verdict, login) {
            (Ok(account), Some(login)) => match self.principal(account.account, login).await {
                Ok(principal) => Ok(principal),
                Err(error) => {
                    tracing::error!(error = %error, "cannot load the account's rights");
                    Err("registry-unavailable")
                }
            },
            (Ok(_), None) => Err("invalid-login"),
            (Err(reason), _) => Err(reason),
        };
        match principal {
            Ok(principal) => {
                if let Err(error) = self.registry.record_login(account_ref(&principal)).await {
                    tracing::warn!(error = %error, "cannot record the login time");
                }
                self.audit_event(
                    Some(&principal),
                    context,
                    AuditAction::Login,
                    None,
                    AuditOutcome::Ok,
                    Some(method.as_str().into()),
                );
                tracing::info!(session = %context.session_id, login = %principal.login, method = method.as_str(), "login");
                metrics().count_login(method.as_str(), true);
                Some(principal)
            }
            Err(reason) => {
                self.audit_refused_login(login_text, AuditAction::Login, reason, context);
                tracing::info!(session = %context.session_id, method = method.as_str(), reason, "login refused");
                metrics().count_login(method.as_str(), false);
                None
            }
        }
    }

    /// The principal of an open session as the registry sees it now, or why the account may
    /// no longer be used (audited). A registry outage keeps the session as it was.
    pub async fn current_principal(
        &self,
        principal: &Principal,
        context: &SessionContext,
    ) -> Result<Principal, &'static str> {
        let session = match self.registry.session_account(&principal.login).await {
            Ok(session) => session,
            Err(error) => {
                // A row that cannot be read (a stored contract number no longer valid, say)
                // must not keep a revoked account open: its state alone decides, and the
                // session keeps the rights it had.
                tracing::warn!(error = %error, "cannot re-check an open session's rights");
                let refusal = match self.registry.login_account(&principal.login).await {
                    Ok(state) => self.withdrawal(principal, state.as_ref()),
                    Err(_) => None,
                };
                return match refusal {
                    Some(reason) => Err(self.end_withdrawn_session(principal, context, reason)),
                    None => Ok(principal.clone()),
                };
            }
        };
        let refusal = self.withdrawal(principal, session.as_ref().map(|s| &s.account));
        let Some(SessionAccount { account, access }) = session.filter(|_| refusal.is_none()) else {
            return Err(self.end_withdrawn_session(principal, context, refusal.unwrap_or("account-removed")));
        };
        let (role, language) = match (account.account, access) {
            (AccountRef::User { id, organisation_id }, Some(access)) => (
                Role::Employer {
                    user_id: id,
                    organisation_id,
                    profile: access.profile,
                    master: access.master,
                    contracts: access.contracts,
                },
                access.language,
            ),
            (AccountRef::Staff { id }, _) => (Role::Staff { staff_id: id }, crate::domain::Language::En),
            (AccountRef::User { .. }, None) => return Ok(principal.clone()),
        };
        Ok(Principal { login: principal.login.clone(), role, language })
    }

    /// Why an open session's account, as it stands now, may no longer be used.
    fn withdrawal(&self, principal: &Principal, account: Option<&LoginAccount>) -> Option<&'static str> {
        match account {
            None => Some("account-removed"),
            Some(account) if account.account != account_ref(principal) => Some("account-replaced"),
            Some(account) => account.refusal(self.clock.today()),
        }
    }

    /// Records why an open session ends, and gives the reason back.
    fn end_withdrawn_session(
        &self,
        principal: &Principal,
        context: &SessionContext,
        reason: &'static str,
    ) -> &'static str {
        self.audit_event(
            Some(principal),
            context,
            AuditAction::SessionEnd,
            None,
            AuditOutcome::Refused,
            Some(reason.into()),
        );
        tracing::info!(session = %context.session_id, reason, "open session ended: access withdrawn");
        reason
    }

    /// The principal of an authenticated account, with its contracts resolved now.
    pub async fn principal(&self, account: AccountRef, login: Login) -> Result<Principal, GatewayError> {
        let mut language = crate::domain::Language::En;
        let role = match account {
            AccountRef::Staff { id } => Role::Staff { staff_id: id },
            AccountRef::User { id, organisation_id } => {
                let user = self.registry.user_by_id(id).await?;
                let contracts: BTreeSet<_> = match &user.scope {
                    Scope::AllContracts => {
                        self.registry.contracts(Some(organisation_id)).await?.into_iter().map(|c| c.number).collect()
                    }
                    Scope::Contracts(list) => list.iter().cloned().collect(),
                };
                language = user.language;
                Role::Employer { user_id: id, organisation_id, profile: user.profile, master: user.master, contracts }
            }
        };
        Ok(Principal { login, role, language })
    }

    async fn verify_password_bounded(&self, password: String, hash: Option<String>) -> bool {
        let Ok(_permit) = self.password_checks.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || verify_password(&password, hash.as_deref())).await.unwrap_or(false)
    }
}

fn account_ref(principal: &Principal) -> AccountRef {
    match principal.role {
        Role::Staff { staff_id } => AccountRef::Staff { id: staff_id },
        Role::Employer { user_id, organisation_id, .. } => AccountRef::User { id: user_id, organisation_id },
    }
}
