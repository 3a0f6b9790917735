//! Encryption at rest with age (X25519 recipients, STREAM chunks of 64 KiB).
//!
//! Objects are sealed while they are written and opened while they are read: a sealed object
//! is an ordinary age file, so `age -d -i identity.txt` reads it too. Seeking works chunk by
//! chunk, which is what random-offset SFTP reads need.

use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use age::secrecy::ExposeSecret;
use bytes::{Bytes, BytesMut};

/// Every age file starts with this line; plain objects stored before encryption was turned on
/// do not (see [`is_sealed`]).
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the identity file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the identity file {path} is readable by others: chmod 600 it")]
    Exposed { path: PathBuf },
    #[error("the identity file {path} holds no age identity (AGE-SECRET-KEY-1...) on line {line}")]
    BadIdentity { path: PathBuf, line: usize },
    #[error("the identity file {0} holds no identity")]
    Empty(PathBuf),
    #[error("`{0}` is not an age recipient (age1...)")]
    BadRecipient(String),
    #[error("cannot write the identity file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("encryption is on but no identity file is configured")]
    NoIdentity,
}

/// The identities that open objects and the recipients new objects are sealed to.
#[derive(Clone)]
pub struct KeyRing {
    identities: Arc<Vec<age::x25519::Identity>>,
    recipients: Arc<Vec<age::x25519::Recipient>>,
    /// Whether new objects are sealed; identities open sealed objects either way.
    seal_new_objects: bool,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("identities", &self.identities.len())
            .field("recipients", &self.recipient_strings())
            .field("seal_new_objects", &self.seal_new_objects)
            .finish()
    }
}

/// A new identity, written with mode 0600. Returns its recipient.
pub fn generate_identity_file(path: &Path) -> Result<String, KeyError> {
    use std::os::unix::fs::OpenOptionsExt;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let error = |source| KeyError::Write { path: path.to_path_buf(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(error)?;
    let created = crate::clock::now_rfc3339();
    let text = format!(
        "# pension-gateway storage identity, created {created}\n# public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    );
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(error)?;
    Ok(recipient)
}

fn read_identity_file(path: &Path) -> Result<Vec<age::x25519::Identity>, KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let error = |source| KeyError::Read { path: path.to_path_buf(), source };
    let metadata = std::fs::metadata(path).map_err(error)?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(KeyError::Exposed { path: path.to_path_buf() });
    }
    let text = std::fs::read_to_string(path).map_err(error)?;
    let mut identities = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let identity = age::x25519::Identity::from_str(line)
            .map_err(|_| KeyError::BadIdentity { path: path.to_path_buf(), line: index + 1 })?;
        identities.push(identity);
    }
    if identities.is_empty() {
        return Err(KeyError::Empty(path.to_path_buf()));
    }
    Ok(identities)
}

impl KeyRing {
    /// Reads the identity files; new objects are sealed to the first identity file's keys
    /// and to `extra_recipients` (an offline recovery key, say), never to the extras alone:
    /// the gateway must always be able to read what it stores.
    pub fn load(identity_files: &[PathBuf], recipients: &[String], seal_new_objects: bool) -> Result<Self, KeyError> {
        let mut identities = Vec::new();
        let mut first_file_recipients = Vec::new();
        for (index, path) in identity_files.iter().enumerate() {
            let found = read_identity_file(path)?;
            if index == 0 {
                first_file_recipients = found.iter().map(|i| i.to_public()).collect();
            }
            identities.extend(found);
        }
        if seal_new_objects && first_file_recipients.is_empty() {
            return Err(KeyError::NoIdentity);
        }
        let mut all_recipients = first_file_recipients;
        for extra in recipients {
            let parsed =
                age::x25519::Recipient::from_str(extra.trim()).map_err(|_| KeyError::BadRecipient(extra.clone()))?;
            if !all_recipients.iter().any(|known| known.to_string() == parsed.to_string()) {
                all_recipients.push(parsed);
            }
        }
        let recipients = all_recipients;
        Ok(Self { identities: Arc::new(identities), recipients: Arc::new(recipients), seal_new_objects })
    }

    /// A key ring made in memory, for tests and benchmarks.
    pub fn generated() -> Self {
        let identity = age::x25519::Identity::generate();
        let recipient = identity.to_public();
        Self { identities: Arc::new(vec![identity]), recipients: Arc::new(vec![recipient]), seal_new_objects: true }
    }

    pub fn seals_new_objects(&self) -> bool {
        self.seal_new_objects && !self.recipients.is_empty()
    }

    /// The recipients new objects are sealed to, as `age1...` strings.
    pub fn recipient_strings(&self) -> Vec<String> {
        self.recipients.iter().map(ToString::to_string).collect()
    }

    /// Starts sealing a new object, or `None` when new objects are stored plain.
    pub fn sealer(&self) -> io::Result<Option<Sealer>> {
        if !self.seals_new_objects() {
            return Ok(None);
        }
        let recipients = self.recipients.iter().map(|r| r as &dyn age::Recipient);
        let encryptor = age::Encryptor::with_recipients(recipients).map_err(io::Error::other)?;
        let spill = Spill::default();
        let stream = encryptor.wrap_output(spill.clone())?;
        Ok(Some(Sealer { stream, spill }))
    }

    /// Opens a sealed object read through `source`.
    pub fn open<R: Read + Seek>(&self, source: R) -> io::Result<Opened<R>> {
        // age parses an unbuffered header a byte per read: some 300 reads of the store for
        // each file opened. One buffered read holds a header of a few stanzas.
        let source = io::BufReader::with_capacity(HEADER_READ_BYTES, source);
        let decryptor =
            age::Decryptor::new_buffered(source).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let identities = self.identities.iter().map(|i| i as &dyn age::Identity);
        let mut stream = decryptor.decrypt(identities).map_err(|e| {
            io::Error::new(io::ErrorKind::PermissionDenied, format!("no configured identity opens it: {e}"))
        })?;
        let size = stream.seek(io::SeekFrom::End(0))?;
        stream.seek(io::SeekFrom::Start(0))?;
        Ok(Opened { stream, size, position: 0, window_start: 0, window: Bytes::new() })
    }
}

/// What the first read of a sealed object asks for: its header (about 200 bytes per stanza)
/// and the start of the payload.
const HEADER_READ_BYTES: usize = 2048;

/// Whether stored bytes are an age file (judged from their first bytes).
pub fn is_sealed(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(AGE_MAGIC)
}

/// How many leading bytes [`is_sealed`] needs.
pub const SEAL_MAGIC_LEN: usize = AGE_MAGIC.len();

/// Collects what the age stream writes, to hand it to the backend.
#[derive(Clone, Default)]
struct Spill(Arc<Mutex<BytesMut>>);

impl Spill {
    fn take(&self) -> Bytes {
        match self.0.lock() {
            Ok(mut buffer) => buffer.split().freeze(),
            Err(poisoned) => poisoned.into_inner().split().freeze(),
        }
    }
}

impl Write for Spill {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.0.lock() {
            Ok(mut buffer) => buffer.extend_from_slice(data),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(data),
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An age stream being written: plaintext in, ciphertext out.
pub struct Sealer {
    stream: age::stream::StreamWriter<Spill>,
    spill: Spill,
}

impl Sealer {
    /// Seals `plaintext`; returns the ciphertext ready so far (whole 64 KiB chunks).
    pub fn seal(&mut self, plaintext: &[u8]) -> io::Result<Bytes> {
        self.stream.write_all(plaintext)?;
        Ok(self.spill.take())
    }

    /// Seals the last chunk; returns the rest of the ciphertext.
    pub fn finish(self) -> io::Result<Bytes> {
        let spill = self.stream.finish()?;
        Ok(spill.take())
    }
}

/// A sealed object opened for reading.
pub struct Opened<R: Read + Seek> {
    stream: age::stream::StreamReader<io::BufReader<R>>,
    size: u64,
    /// Where the stream stands: the end of the last span decrypted.
    position: u64,
    /// The last span decrypted, from `window_start`: reads it covers are served from memory.
    window_start: u64,
    window: Bytes,
}

/// How far ahead a reader going forward is decrypted: 4 of the 32 KiB reads an SFTP client
/// pipelines, so that most reads are answered without a hop to a blocking thread.
const READ_AHEAD_BYTES: usize = 128 * 1024;

impl<R: Read + Seek> Opened<R> {
    /// Plaintext size, authenticated by decrypting the last chunk.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The bytes of a read, when the last span decrypted holds all of them.
    pub fn buffered(&self, offset: u64, len: usize) -> Option<Bytes> {
        if offset >= self.size || len == 0 {
            return Some(Bytes::new());
        }
        let len = len.min(usize::try_from(self.size - offset).unwrap_or(usize::MAX));
        let start = usize::try_from(offset.checked_sub(self.window_start)?).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.window.len()).then(|| self.window.slice(start..end))
    }

    /// Up to `len` plaintext bytes from `offset`. A read that continues the previous one
    /// decrypts [`READ_AHEAD_BYTES`] at once, for the reads that will follow.
    pub fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Bytes> {
        if let Some(bytes) = self.buffered(offset, len) {
            return Ok(bytes);
        }
        let left = usize::try_from(self.size - offset).unwrap_or(usize::MAX);
        let len = len.min(left);
        let span = if offset == self.position { len.max(READ_AHEAD_BYTES).min(left) } else { len };
        if offset != self.position {
            self.stream.seek(io::SeekFrom::Start(offset))?;
        }
        let mut buffer = vec![0u8; span];
        let result = self.stream.read_exact(&mut buffer);
        self.position = if result.is_ok() { offset + span as u64 } else { u64::MAX };
        if let Err(error) = result {
            self.window = Bytes::new();
            return Err(error);
        }
        self.window_start = offset;
        self.window = Bytes::from(buffer);
        Ok(self.window.slice(..len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_all(ring: &KeyRing, plaintext: &[u8], piece: usize) -> Vec<u8> {
        let mut sealer = ring.sealer().unwrap().unwrap();
        let mut out = Vec::new();
        for chunk in plaintext.chunks(piece.max(1)) {
            out.extend_from_slice(&sealer.seal(chunk).unwrap());
        }
        out.extend_from_slice(&sealer.finish().unwrap());
        out
    }

    #[test]
    fn sealed_bytes_differ_from_the_plaintext_and_open_at_any_offset() {
        let ring = KeyRing::generated();
        let plaintext: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let sealed = seal_all(&ring, &plaintext, 32_768);
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(64).any(|w| w == &plaintext[1000..1064]));
        let mut opened = ring.open(io::Cursor::new(sealed)).unwrap();
        assert_eq!(opened.size(), plaintext.len() as u64);
        for (offset, len) in [(0u64, 10usize), (65_530, 20), (299_990, 100), (131_072, 65_536), (5, 1)] {
            let got = opened.read_at(offset, len).unwrap();
            let end = (offset as usize + len).min(plaintext.len());
            assert_eq!(got, &plaintext[offset as usize..end], "offset {offset}");
        }
        assert!(opened.read_at(300_000, 10).unwrap().is_empty());
    }

    #[test]
    fn reads_forward_backward_and_across_the_read_ahead_get_the_right_bytes() {
        let ring = KeyRing::generated();
        let plaintext: Vec<u8> = (0..700_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut opened = ring.open(io::Cursor::new(seal_all(&ring, &plaintext, 65_536))).unwrap();
        let check = |opened: &mut Opened<io::Cursor<Vec<u8>>>, offset: u64, len: usize| {
            let got = opened.read_at(offset, len).unwrap();
            let end = (offset as usize + len).min(plaintext.len());
            assert_eq!(got, &plaintext[offset as usize..end], "offset {offset}, length {len}");
        };
        // An SFTP client going forward by 32 KiB, through several read-ahead spans.
        for offset in (0..plaintext.len() as u64).step_by(32_768) {
            check(&mut opened, offset, 32_768);
        }
        // Back into an earlier span, a read straddling a span's end, then forward again.
        for (offset, len) in [(10, 100), (262_100, 1_000), (263_100, 32_768), (699_999, 10), (0, 700_001), (5, 3)] {
            check(&mut opened, offset, len);
        }
    }

    #[test]
    fn empty_and_chunk_sized_objects_round_trip() {
        let ring = KeyRing::generated();
        for size in [0usize, 1, 65_536, 131_072] {
            let plaintext = vec![7u8; size];
            let sealed = seal_all(&ring, &plaintext, 10_000);
            let mut opened = ring.open(io::Cursor::new(sealed)).unwrap();
            assert_eq!(opened.size(), size as u64);
            assert_eq!(opened.read_at(0, size + 1).unwrap(), plaintext);
        }
    }

    #[test]
    fn another_identity_cannot_open_and_an_altered_byte_is_detected() {
        let ring = KeyRing::generated();
        let sealed = seal_all(&ring, &[1u8; 100_000], 4096);
        let stranger = KeyRing::generated();
        let error = stranger.open(io::Cursor::new(sealed.clone())).err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);

        let mut altered = sealed;
        let last = altered.len() - 40;
        altered[last] ^= 1;
        let failed = ring.open(io::Cursor::new(altered.clone())).err();
        let failed_read = failed.is_some() || ring.open(io::Cursor::new(altered)).unwrap().read_at(0, 100_000).is_err();
        assert!(failed_read);
    }

    #[test]
    fn identity_files_must_be_private_and_well_formed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.txt");
        let recipient = generate_identity_file(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let ring = KeyRing::load(std::slice::from_ref(&path), &[], true).unwrap();
        assert_eq!(ring.recipient_strings(), vec![recipient]);
        assert!(generate_identity_file(&path).is_err(), "an existing identity is never overwritten");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(KeyRing::load(std::slice::from_ref(&path), &[], true), Err(KeyError::Exposed { .. })));

        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "# comment\nnot a key\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(KeyRing::load(&[bad], &[], true), Err(KeyError::BadIdentity { line: 2, .. })));
        assert!(matches!(KeyRing::load(&[], &["age1nope".to_string()], false), Err(KeyError::BadRecipient(_))));
    }
}
