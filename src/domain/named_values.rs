//! Closed sets of values stored as text (statuses, audit actions): one macro gives each its
//! text, its parsing and its list, so that the text of a value is written once.

/// Declares an enum whose variants each have one stored text.
macro_rules! named_values {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text the value is stored and shown as.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::InvalidIdentifier;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::domain::InvalidIdentifier::new(
                        $what,
                        format!("unknown value {text:?}"),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_values! {
    /// Where a user sheet dropped into `/access/requests/` stands.
    pub enum AccessRequestStatus ("access request status") {
        /// Checked without error; waiting for staff.
        Pending = "pending",
        /// Has errors (when dropped, or when staff applied it).
        Invalid = "invalid",
        Approved = "approved",
        Rejected = "rejected",
    }
}

named_values! {
    /// What an audit event records. The text is part of the hash chain: never change one.
    pub enum AuditAction ("audit action") {
        /// A connection, refused before login (limits, shutdown).
        Connect = "connect",
        Login = "login",
        /// A key offered before signing, refused.
        LoginKeyOffered = "login-key-offered",
        SessionEnd = "session-end",
        Exec = "exec",
        Shell = "shell",
        /// A subsystem other than sftp.
        Subsystem = "subsystem",
        X11 = "x11",
        Open = "open",
        OpenRead = "open-read",
        OpenWrite = "open-write",
        CloseRead = "close-read",
        CloseWrite = "close-write",
        List = "list",
        Stat = "stat",
        Setstat = "setstat",
        Realpath = "realpath",
        Mkdir = "mkdir",
        Rmdir = "rmdir",
        Remove = "remove",
        Rename = "rename",
        /// The defender banned an address or suspended a login's password logins.
        Ban = "ban",
        /// An operator lifted a ban (`defender unban`).
        Unban = "unban",
        Symlink = "symlink",
        OrgAdd = "org-add",
        OrgConvention = "org-convention",
        ContractAdd = "contract-add",
        ContractCategories = "contract-categories",
        /// National numbers shown to staff.
        AffiliatesReveal = "affiliates-reveal",
        TemplateAnnualAdjustment = "template-annual-adjustment",
        UserAdd = "user-add",
        UserModify = "user-modify",
        UserRevoke = "user-revoke",
        UserResetPassword = "user-reset-password",
        UserSheetApply = "user-sheet-apply",
        StaffAdd = "staff-add",
        AccessApprove = "access-approve",
        AccessReject = "access-reject",
        Publish = "publish",
        Ingest = "ingest",
        IngestRetry = "ingest-retry",
        RetentionDelete = "retention-delete",
    }
}

named_values! {
    /// How an audited action ended.
    pub enum AuditOutcome ("audit outcome") {
        Ok = "ok",
        /// Refused by a rule (the request's fault).
        Refused = "refused",
        /// Failed on the gateway's side (storage, registry).
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_from_its_text() {
        for status in AccessRequestStatus::ALL {
            assert_eq!(status.as_str().parse::<AccessRequestStatus>().unwrap(), *status);
        }
        assert!("Pending".parse::<AccessRequestStatus>().is_err());
    }
}
