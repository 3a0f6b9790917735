use std::fmt;

/// Why a path sent by a client was refused before any decision was taken on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemotePathError {
    #[error("the path contains a NUL byte")]
    NulByte,
    #[error("the path is not valid UTF-8")]
    NotUtf8,
    #[error("the path climbs above the root folder")]
    EscapesRoot,
    #[error("the path is longer than 4096 bytes")]
    TooLong,
    #[error("invalid name {0:?}: names may not contain '\\', control characters or be longer than 255 bytes")]
    InvalidName(String),
}

/// One component of a virtual path: a file or folder name as a client may write it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileName(String);

impl FileName {
    pub fn parse(input: &str) -> Result<Self, RemotePathError> {
        let invalid = || RemotePathError::InvalidName(input.chars().take(64).collect());
        if input.contains('\0') {
            return Err(RemotePathError::NulByte);
        }
        // russh-sftp converts invalid UTF-8 lossily: two different byte names could meet here.
        if input.contains('\u{fffd}') {
            return Err(RemotePathError::NotUtf8);
        }
        if input.is_empty() || input.len() > 255 || input == "." || input == ".." {
            return Err(invalid());
        }
        if input.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
            return Err(invalid());
        }
        Ok(Self(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Names clients use while a transfer is in progress (`*.filepart`, `*.part`, `*.tmp`,
    /// dot-files): such an upload is held until it is renamed to its final name.
    pub fn is_temporary(&self) -> bool {
        let lower = self.0.to_ascii_lowercase();
        self.0.starts_with('.')
            || [".filepart", ".part", ".tmp", ".partial", ".crdownload"].iter().any(|suffix| lower.ends_with(suffix))
    }
}

/// Compared with plain text as it is written (already validated on this side).
impl PartialEq<&str> for FileName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<str> for FileName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// Written as its text in JSON output.
impl serde::Serialize for FileName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A normalised virtual path: absolute, no `.` or `..`, every component a valid [`FileName`].
///
/// [`RemotePath::resolve`] is the one normalisation function: routing, permission checks and
/// the audit log all see the same value, and paths are compared by components, never by
/// string prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RemotePath {
    components: Vec<FileName>,
}

impl RemotePath {
    pub fn root() -> Self {
        Self::default()
    }

    /// Normalises a client path. Relative paths start at the root (every user's home is `/`);
    /// `.` and empty components vanish; `..` removes the previous component and is refused
    /// when there is none.
    pub fn resolve(input: &str) -> Result<Self, RemotePathError> {
        if input.contains('\0') {
            return Err(RemotePathError::NulByte);
        }
        if input.len() > 4096 {
            return Err(RemotePathError::TooLong);
        }
        let mut components = Vec::new();
        for part in input.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if components.pop().is_none() {
                        return Err(RemotePathError::EscapesRoot);
                    }
                }
                name => components.push(FileName::parse(name)?),
            }
        }
        Ok(Self { components })
    }

    pub fn components(&self) -> &[FileName] {
        &self.components
    }

    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// The last component, `None` for the root.
    pub fn file_name(&self) -> Option<&FileName> {
        self.components.last()
    }

    /// The folder holding this path; the root is its own parent.
    pub fn parent(&self) -> RemotePath {
        let mut components = self.components.clone();
        components.pop();
        Self { components }
    }

    pub fn join(&self, name: &FileName) -> RemotePath {
        let mut components = self.components.clone();
        components.push(name.clone());
        Self { components }
    }
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.components.is_empty() {
            return f.write_str("/");
        }
        for c in &self.components {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(input: &str) -> String {
        RemotePath::resolve(input).unwrap().to_string()
    }

    #[test]
    fn paths_are_normalised_relative_to_the_root() {
        assert_eq!(resolved(""), "/");
        assert_eq!(resolved("."), "/");
        assert_eq!(resolved("/"), "/");
        assert_eq!(resolved("GP-1//inbox/./affiliations/"), "/GP-1/inbox/affiliations");
        assert_eq!(resolved("/GP-1/inbox/../documents"), "/GP-1/documents");
        assert_eq!(resolved("/etc/passwd"), "/etc/passwd");
    }

    #[test]
    fn climbing_above_the_root_is_refused() {
        assert_eq!(RemotePath::resolve("..").unwrap_err(), RemotePathError::EscapesRoot);
        assert_eq!(RemotePath::resolve("../../etc").unwrap_err(), RemotePathError::EscapesRoot);
        assert_eq!(RemotePath::resolve("/GP-1/../../etc").unwrap_err(), RemotePathError::EscapesRoot);
    }

    #[test]
    fn nul_bytes_lossy_utf8_and_backslashes_are_refused() {
        assert_eq!(RemotePath::resolve("/GP-1\0/x").unwrap_err(), RemotePathError::NulByte);
        assert_eq!(RemotePath::resolve("/a\u{fffd}b").unwrap_err(), RemotePathError::NotUtf8);
        assert!(matches!(RemotePath::resolve("C:\\Windows"), Err(RemotePathError::InvalidName(_))));
        assert!(matches!(RemotePath::resolve("/a\nb"), Err(RemotePathError::InvalidName(_))));
        assert!(RemotePath::resolve(&"a/".repeat(3000)).is_err());
    }

    #[test]
    fn paths_compare_by_component() {
        let a = RemotePath::resolve("/GP-1/inbox").unwrap();
        let b = RemotePath::resolve("/GP-10/inbox").unwrap();
        assert_ne!(a.components()[0], b.components()[0]);
        assert_eq!(a.parent(), RemotePath::resolve("/GP-1").unwrap());
        assert_eq!(RemotePath::root().parent(), RemotePath::root());
    }

    #[test]
    fn temporary_names_are_recognised() {
        for name in ["x.xlsx.filepart", "x.part", "X.TMP", ".x.xlsx"] {
            assert!(FileName::parse(name).unwrap().is_temporary(), "{name}");
        }
        assert!(!FileName::parse("affiliations.xlsx").unwrap().is_temporary());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever a client sends as a path: no panic, and a path that resolves stays under
        /// the root, names no `.`, `..` or empty component, and resolves to itself again.
        #[test]
        fn fuzz_any_client_path_resolves_inside_the_root_or_is_refused(
            raw in "(/|\\.|\\.\\.|[a-zA-Z0-9 _\\-]{0,8}|\\\\|\\x00|é|\\u{202e}){0,12}"
        ) {
            if let Ok(path) = RemotePath::resolve(&raw) {
                let shown = path.to_string();
                proptest::prop_assert!(shown.starts_with('/'));
                for component in path.components() {
                    proptest::prop_assert!(![".", "..", ""].contains(&component.as_str()));
                    proptest::prop_assert!(!component.as_str().contains('/') && !component.as_str().contains('\0'));
                }
                proptest::prop_assert_eq!(RemotePath::resolve(&shown).map(|p| p.to_string()), Ok(shown));
            }
        }

        #[test]
        fn fuzz_any_bytes_as_a_path_never_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = RemotePath::resolve(&String::from_utf8_lossy(&raw));
        }
    }
}
