//! The storage conformance suite, run against the local disk and against a real S3 server
//! (Garage, started by `scripts/test`), with encryption at rest as configured by default.

use std::path::Path;

use bytes::Bytes;
use pension_gateway::config::{BackendSettings, Settings};
use pension_gateway::storage::{KeyRing, ObjectKey, ObjectStore, StorageError};

use crate::support::{make_private, s3_client, s3_overrides, s3_server};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    LocalDisk,
    S3,
}

fn settings(backend: Backend, dir: &Path, extra: &[(&str, toml::Value)]) -> Settings {
    make_private(dir);
    let mut overrides = vec![("data_dir", toml::Value::String(dir.display().to_string()))];
    if backend == Backend::S3 {
        overrides.extend(s3_overrides(&s3_server().endpoint));
    }
    overrides.extend(extra.iter().cloned());
    Settings::with_overrides(&overrides).unwrap()
}

async fn open(backend: Backend, dir: &Path) -> (ObjectStore, Settings) {
    let settings = settings(backend, dir, &[]);
    (ObjectStore::open(&settings.storage).await.unwrap(), settings)
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::from_stored(&format!("documents/GP-1001/invoices/{name}")).unwrap()
}

async fn put(store: &ObjectStore, key: &ObjectKey, content: &[u8]) {
    let mut writer = store.create(key.clone()).await.unwrap();
    for piece in content.chunks(100_000) {
        writer.append(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    let stored = writer.finish().await.unwrap().commit().await.unwrap();
    assert_eq!(stored.size, content.len() as u64);
}

async fn read_all(store: &ObjectStore, key: &ObjectKey) -> Result<Vec<u8>, StorageError> {
    let reader = store.open_reader(key).await?;
    let mut out = Vec::new();
    while (out.len() as u64) < reader.size() {
        let chunk = reader.read_at(out.len() as u64, 200_000).await?;
        assert!(!chunk.is_empty());
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The bytes as the backend holds them, read behind the gateway's back.
async fn raw_bytes(settings: &Settings, key: &ObjectKey) -> Vec<u8> {
    match &settings.storage.backend {
        BackendSettings::LocalDisk { path, .. } => std::fs::read(path.join(key.as_str())).unwrap(),
        BackendSettings::S3(s3) => {
            let client = s3_client(s3.endpoint.as_deref().unwrap()).await;
            let object =
                client.get_object().bucket(&s3.bucket).key(format!("{}{}", s3.prefix, key)).send().await.unwrap();
            object.body.collect().await.unwrap().into_bytes().to_vec()
        }
    }
}

async fn unfinished_multipart_uploads(settings: &Settings) -> usize {
    match &settings.storage.backend {
        BackendSettings::LocalDisk { .. } => 0,
        BackendSettings::S3(s3) => {
            let client = s3_client(s3.endpoint.as_deref().unwrap()).await;
            let listed = client.list_multipart_uploads().bucket(&s3.bucket).prefix(&s3.prefix).send().await.unwrap();
            listed.uploads().len()
        }
    }
}

async fn put_get_ranged_get_list_and_delete(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(backend, dir.path()).await;
    let content = pseudo_random(12 * 1024 * 1024 + 12_345, 1);
    let first = key("first");
    put(&store, &first, &content).await;
    let small = key("small");
    put(&store, &small, b"tiny").await;
    let empty = key("empty");
    put(&store, &empty, b"").await;

    let reader = store.open_reader(&first).await.unwrap();
    assert_eq!(reader.size(), content.len() as u64);
    for (offset, len) in [(0u64, 10usize), (65_530, 20), (5 * 1024 * 1024 - 3, 70_000), (12 * 1024 * 1024, 50_000)] {
        let got = reader.read_at(offset, len).await.unwrap();
        let end = (offset as usize + len).min(content.len());
        assert_eq!(&got[..], &content[offset as usize..end], "range at {offset}");
    }
    assert!(reader.read_at(content.len() as u64, 10).await.unwrap().is_empty());
    assert_eq!(read_all(&store, &first).await.unwrap(), content);
    assert_eq!(read_all(&store, &small).await.unwrap(), b"tiny");
    assert_eq!(store.open_reader(&empty).await.unwrap().size(), 0);

    let listed: Vec<String> = store.list().await.unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for k in [&first, &small, &empty] {
        assert!(listed.contains(&k.to_string()));
    }

    store.delete(&first).await.unwrap();
    store.delete(&first).await.unwrap();
    assert!(matches!(store.open_reader(&first).await, Err(StorageError::NotFound(_))));
    assert_eq!(store.list().await.unwrap().len(), 2);
}

/// Sealed objects keep the span last decrypted for the reads that follow: reads of any size, in any
/// order, and several at once (as SFTP clients pipeline them) still get exactly their bytes.
async fn sealed_reads_of_any_size_in_any_order_get_their_bytes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(backend, dir.path()).await;
    let content = pseudo_random(3 * 1024 * 1024 + 777, 7);
    let k = key("ahead");
    put(&store, &k, &content).await;
    let reader = store.open_reader(&k).await.unwrap();
    let check = |got: bytes::Bytes, offset: u64, len: usize| {
        let end = (offset as usize + len).min(content.len());
        assert_eq!(&got[..], &content[offset as usize..end], "read of {len} at {offset}");
    };
    // Forward by 32 KiB, then by OpenSSH's 255 KiB, to the end.
    let mut offset = 0u64;
    while offset < 1024 * 1024 {
        check(reader.read_at(offset, 32_768).await.unwrap(), offset, 32_768);
        offset += 32_768;
    }
    while offset < content.len() as u64 {
        check(reader.read_at(offset, 261_120).await.unwrap(), offset, 261_120);
        offset += 261_120;
    }
    // Anywhere, any length.
    let mut state = 12_345u64;
    for _ in 0..60 {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let offset = (state >> 11) % (content.len() as u64 + 10);
        let len = usize::try_from((state >> 40) % 300_000).unwrap() + 1;
        check(reader.read_at(offset, len).await.unwrap(), offset, len);
    }
    // Sixteen reads in flight at once, answered in whatever order.
    let mut reads = tokio::task::JoinSet::new();
    for i in 0..16u64 {
        let reader = reader.clone();
        reads.spawn(async move { (i, reader.read_at(1_000_000 + i * 65_536, 65_536).await.unwrap()) });
    }
    while let Some(done) = reads.join_next().await {
        let (i, got) = done.unwrap();
        check(got, 1_000_000 + i * 65_536, 65_536);
    }
}

async fn an_interrupted_write_leaves_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, settings) = open(backend, dir.path()).await;
    let content = Bytes::from(pseudo_random(11 * 1024 * 1024, 2));

    let mut dropped = store.create(key("dropped")).await.unwrap();
    dropped.append(content.clone()).await.unwrap();
    drop(dropped);
    let mut staged_only = store.create(key("staged")).await.unwrap();
    staged_only.append(content).await.unwrap();
    drop(staged_only.finish().await.unwrap());

    let mut left = usize::MAX;
    for _ in 0..100 {
        left = unfinished_multipart_uploads(&settings).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "unfinished multipart uploads are aborted");
    assert!(store.list().await.unwrap().is_empty());
    if let BackendSettings::LocalDisk { path, .. } = &settings.storage.backend {
        let staged: Vec<_> = walk(&path.join(".staging"));
        assert!(staged.is_empty(), "{staged:?}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

async fn objects_are_sealed_at_rest_and_open_with_the_identity_file(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, settings) = open(backend, dir.path()).await;
    let identity = dir.path().join("storage-identity.txt");
    assert!(identity.exists(), "the first start creates the identity");
    let content = b"NISS 85073003328;DUPONT;Jean;salaire 4200,00\n".repeat(3000);
    let k = key("sealed");
    put(&store, &k, &content).await;

    let raw = raw_bytes(&settings, &k).await;
    assert!(raw.starts_with(b"age-encryption.org/v1\n"));
    assert_ne!(raw.len(), content.len());
    for needle in [&b"85073003328"[..], b"DUPONT", b"salaire"] {
        assert!(!raw.windows(needle.len()).any(|w| w == needle), "plaintext found at rest");
    }
    // The identity file alone opens it, as `age -d -i` would.
    let ring = KeyRing::load(&[identity], &[], true).unwrap();
    let mut opened = ring.open(std::io::Cursor::new(raw)).unwrap();
    assert_eq!(opened.read_at(0, content.len()).unwrap(), content);

    // A stranger's identity does not.
    let stranger = ObjectStore::with_keys(&settings.storage, KeyRing::generated()).await.unwrap();
    assert!(matches!(stranger.open_reader(&k).await, Err(StorageError::Unreadable { .. })));
}

async fn rotation_keeps_every_object_readable(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, settings) = open(backend, dir.path()).await;
    let old_identity = dir.path().join("storage-identity.txt");
    let mut contents = Vec::new();
    for (index, size) in [0usize, 1000, 70_000, 6 * 1024 * 1024].into_iter().enumerate() {
        let k = key(&format!("object-{index}"));
        let content = pseudo_random(size, index as u64 + 10);
        put(&store, &k, &content).await;
        contents.push((k, content));
    }
    // An object stored before encryption was turned on.
    let plain_settings =
        self::settings(backend, dir.path(), &[("storage.encryption.enabled", toml::Value::Boolean(false))]);
    let plain = ObjectStore::open(&BackendOnly::of(&settings, &plain_settings)).await.unwrap();
    let legacy = key("legacy");
    put(&plain, &legacy, b"stored before encryption").await;
    contents.push((legacy.clone(), b"stored before encryption".to_vec()));

    let new_identity = dir.path().join("new-identity.txt");
    pension_gateway::storage::sealing::generate_identity_file(&new_identity).unwrap();
    let both = self::settings(
        backend,
        dir.path(),
        &[(
            "storage.encryption.identity_files",
            toml::Value::Array(vec![
                toml::Value::String(new_identity.display().to_string()),
                toml::Value::String(old_identity.display().to_string()),
            ]),
        )],
    );
    let rotating = ObjectStore::open(&BackendOnly::of(&settings, &both)).await.unwrap();

    // Readers keep reading while the rotation runs: no object is ever unreadable.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader_store = rotating.clone();
    let reader_contents = contents.clone();
    let reader_stop = std::sync::Arc::clone(&stop);
    let readers = tokio::spawn(async move {
        let mut rounds = 0;
        while !reader_stop.load(std::sync::atomic::Ordering::Relaxed) || rounds == 0 {
            for (k, content) in &reader_contents {
                let read = match read_all(&reader_store, k).await {
                    Ok(read) => read,
                    // On S3 a read that began before the object was replaced fails (it never
                    // mixes versions); opening it again must work at once.
                    Err(error) if backend == Backend::S3 => {
                        read_all(&reader_store, k).await.unwrap_or_else(|e| panic!("{k}: {error}, then {e}"))
                    }
                    Err(error) => panic!("{k} unreadable during rotation: {error}"),
                };
                assert_eq!(&read, content, "{k} during rotation");
            }
            rounds += 1;
        }
        rounds
    });
    let state = dir.path().join("rotation.state");
    let summary = pension_gateway::storage::rotation::rotate(&rotating, &state, |_, _| {}).await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(readers.await.unwrap() >= 1);
    assert_eq!(summary.resealed, contents.len());
    assert!(summary.failed.is_empty());
    assert!(!state.exists(), "a finished rotation leaves no state");

    let only_new = self::settings(
        backend,
        dir.path(),
        &[(
            "storage.encryption.identity_files",
            toml::Value::Array(vec![toml::Value::String(new_identity.display().to_string())]),
        )],
    );
    let after = ObjectStore::open(&BackendOnly::of(&settings, &only_new)).await.unwrap();
    for (k, content) in &contents {
        assert_eq!(&read_all(&after, k).await.unwrap(), content);
        assert!(raw_bytes(&settings, k).await.starts_with(b"age-encryption.org/v1\n"), "{k} is sealed");
    }
    let old_only = ObjectStore::open(&settings.storage).await.unwrap();
    assert!(matches!(old_only.open_reader(&contents[1].0).await, Err(StorageError::Unreadable { .. })));
}

/// The same backend (same folder or S3 prefix) with another settings' encryption.
struct BackendOnly;

impl BackendOnly {
    fn of(backend_from: &Settings, encryption_from: &Settings) -> pension_gateway::config::StorageSettings {
        pension_gateway::config::StorageSettings {
            backend: backend_from.storage.backend.clone(),
            encryption: encryption_from.storage.encryption.clone(),
            reserve_free_bytes: backend_from.storage.reserve_free_bytes,
        }
    }
}

async fn an_interrupted_rotation_resumes_where_it_stopped(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(backend, dir.path()).await;
    for index in 0..4 {
        put(&store, &key(&format!("object-{index}")), &pseudo_random(1000, index)).await;
    }
    let state = dir.path().join("rotation.state");
    // A run that stopped after two objects left this state behind.
    let mut recipients = store.keys().recipient_strings();
    recipients.sort();
    let fingerprint = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(recipients.join("\n").as_bytes()))
    };
    std::fs::write(&state, format!("recipients {fingerprint}\n{}\n{}\n", key("object-0"), key("object-1"))).unwrap();
    let summary = pension_gateway::storage::rotation::rotate(&store, &state, |_, _| {}).await.unwrap();
    assert_eq!((summary.already_done, summary.resealed), (2, 2));
    assert!(!state.exists());
}

async fn start_up_says_what_is_wrong_with_the_bucket(_: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = s3_server();
    let text = |s: &str| toml::Value::String(s.to_string());
    let message = |extra: Vec<(&'static str, toml::Value)>| {
        let settings = settings(Backend::S3, dir.path(), &extra);
        async move { ObjectStore::open(&settings.storage).await.err().map(|e| e.to_string()).unwrap_or_default() }
    };
    let missing = message(vec![("storage.s3.bucket", text("no-such-bucket-here"))]).await;
    assert!(missing.contains("no-such-bucket-here") && missing.contains("does not exist"), "{missing}");
    let forbidden = message(vec![("storage.s3.bucket", text(&server.forbidden_bucket))]).await;
    assert!(forbidden.contains("access denied"), "{forbidden}");
    // A closed port on loopback.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let unreachable = message(vec![
        ("storage.s3.endpoint", text(&format!("http://{closed}"))),
        ("storage.s3.max_attempts", toml::Value::Integer(1)),
    ])
    .await;
    assert!(unreachable.contains("cannot be reached"), "{unreachable}");
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod local_disk {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::LocalDisk).await
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::S3).await
                }
            )*
        }
    };
}

on_both_backends!(
    put_get_ranged_get_list_and_delete,
    sealed_reads_of_any_size_in_any_order_get_their_bytes,
    an_interrupted_write_leaves_nothing,
    objects_are_sealed_at_rest_and_open_with_the_identity_file,
    rotation_keeps_every_object_readable,
    an_interrupted_rotation_resumes_where_it_stopped,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_encryption_off_objects_are_stored_as_they_are_and_no_identity_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        settings(Backend::LocalDisk, dir.path(), &[("storage.encryption.enabled", toml::Value::Boolean(false))]);
    let store = ObjectStore::open(&settings.storage).await.unwrap();
    assert!(!dir.path().join("storage-identity.txt").exists());
    put(&store, &key("plain"), b"as it is").await;
    assert_eq!(raw_bytes(&settings, &key("plain")).await, b"as it is");
    assert_eq!(read_all(&store, &key("plain")).await.unwrap(), b"as it is");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_encryption_on_over_plain_objects_makes_the_first_identity() {
    let dir = tempfile::tempdir().unwrap();
    let off = settings(Backend::LocalDisk, dir.path(), &[("storage.encryption.enabled", toml::Value::Boolean(false))]);
    put(&ObjectStore::open(&off.storage).await.unwrap(), &key("before"), b"stored before encryption").await;
    let (store, _) = open(Backend::LocalDisk, dir.path()).await;
    assert!(dir.path().join("storage-identity.txt").exists());
    assert_eq!(read_all(&store, &key("before")).await.unwrap(), b"stored before encryption");
    put(&store, &key("after"), b"sealed").await;
    assert_eq!(read_all(&store, &key("after")).await.unwrap(), b"sealed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_key_is_added_to_the_gateways_own_never_instead_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let recovery = dir.path().join("recovery.txt");
    let recovery_key = pension_gateway::storage::sealing::generate_identity_file(&recovery).unwrap();
    let with_recovery = settings(
        Backend::LocalDisk,
        dir.path(),
        &[("storage.encryption.recipients", toml::Value::Array(vec![toml::Value::String(recovery_key.clone())]))],
    );
    let store = ObjectStore::open(&with_recovery.storage).await.unwrap();
    assert_eq!(store.keys().recipient_strings().len(), 2);
    put(&store, &key("both"), b"for two keys").await;
    assert_eq!(read_all(&store, &key("both")).await.unwrap(), b"for two keys", "the gateway reads it");
    let recovery_ring = KeyRing::load(&[recovery], &[], true).unwrap();
    let raw = raw_bytes(&with_recovery, &key("both")).await;
    assert_eq!(recovery_ring.open(std::io::Cursor::new(raw)).unwrap().read_at(0, 100).unwrap(), &b"for two keys"[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_identity_is_not_replaced_while_objects_exist() {
    let dir = tempfile::tempdir().unwrap();
    let (store, settings) = open(Backend::LocalDisk, dir.path()).await;
    put(&store, &key("sealed"), b"sealed").await;
    std::fs::remove_file(dir.path().join("storage-identity.txt")).unwrap();
    let error = ObjectStore::open(&settings.storage).await.err().unwrap().to_string();
    assert!(error.contains("restore it"), "{error}");
    assert!(!dir.path().join("storage-identity.txt").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_start_up_says_what_is_wrong_with_the_bucket() {
    start_up_says_what_is_wrong_with_the_bucket(Backend::S3).await
}

// ---------------------------------------------------------------------------------------------
// The storage behind the running gateway.

mod behind_the_gateway {
    use bytes::Bytes;
    use pension_gateway::config::BackendSettings;
    use pension_gateway::domain::{ContractNumber, FileName, KindName};
    use pension_gateway::storage::ObjectKey;
    use tokio::io::AsyncWriteExt;

    use crate::support::*;

    fn contract() -> ContractNumber {
        ContractNumber::parse("GP-1001").unwrap()
    }

    async fn overwrite_raw(gateway: &TestGateway, key: &str, bytes: &[u8]) {
        match &gateway.settings.storage.backend {
            BackendSettings::LocalDisk { path, .. } => std::fs::write(path.join(key), bytes).unwrap(),
            BackendSettings::S3(s3) => {
                let client = s3_client(s3.endpoint.as_deref().unwrap()).await;
                let body = aws_sdk_s3::primitives::ByteStream::from(bytes.to_vec());
                client
                    .put_object()
                    .bucket(&s3.bucket)
                    .key(format!("{}{key}", s3.prefix))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    async fn storage_verify_names_missing_unreadable_and_altered_objects(database: Database) {
        let gateway = TestGateway::spawn(database).await;
        let kind = KindName::parse("invoices").unwrap();
        for index in 0..4 {
            let name = FileName::parse(&format!("invoice-{index}.pdf")).unwrap();
            let content = format!("%PDF invoice {index} ").repeat(5000);
            gateway.admin.publish_bytes(&contract(), &kind, None, &name, content.as_bytes()).await.unwrap();
        }
        let output = gateway.cli(&["storage", "verify"], &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains("4 object(s) checked, 0 problem(s)"), "{stdout}");

        let registry_contract = gateway.registry().contract(&contract()).await.unwrap();
        let mut documents = gateway.registry().documents_in_folder(registry_contract.id, &kind, None).await.unwrap();
        documents.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        let keys: Vec<String> = documents.iter().map(|d| d.object_key.clone()).collect();
        let storage = gateway.gateway.storage();
        storage.delete(&ObjectKey::from_stored(&keys[0]).unwrap()).await.unwrap();
        let mut replacement = storage.create(ObjectKey::from_stored(&keys[1]).unwrap()).await.unwrap();
        replacement.append(Bytes::from_static(b"%PDF another invoice")).await.unwrap();
        replacement.finish().await.unwrap().commit().await.unwrap();
        overwrite_raw(&gateway, &keys[2], b"age-encryption.org/v1\n-> X25519 broken\n").await;

        let output = gateway.cli(&["storage", "verify", "--json"], &[]);
        assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["checked"], 4);
        let problem_of = |key: &str| {
            report["problems"].as_array().unwrap().iter().find(|p| p["key"] == key).map(|p| p["problem"].to_string())
        };
        assert!(problem_of(&keys[0]).unwrap().contains("missing"));
        assert!(problem_of(&keys[1]).unwrap().contains("altered"));
        assert!(problem_of(&keys[2]).unwrap().contains("unreadable"));
        assert_eq!(problem_of(&keys[3]), None);
        assert!(!String::from_utf8_lossy(&output.stdout).contains("invoice-"), "no file names in the report");
    }

    async fn keys_rotate_moves_every_object_to_a_new_identity(database: Database) {
        let gateway = TestGateway::spawn(database).await;
        let kind = KindName::parse("invoices").unwrap();
        for index in 0..3 {
            let name = FileName::parse(&format!("invoice-{index}.pdf")).unwrap();
            gateway.admin.publish_bytes(&contract(), &kind, None, &name, &vec![index; 100_000]).await.unwrap();
        }
        let new_identity = gateway.key_dir.path().join("identity-2027.txt");
        let output = gateway.cli(&["keys", "generate", new_identity.to_str().unwrap()], &[]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stdout).contains("public key: age1"));

        let old_identity = gateway.data_dir.path().join("storage-identity.txt");
        let both = format!("[\"{}\", \"{}\"]", new_identity.display(), old_identity.display());
        let only_new = format!("[\"{}\"]", new_identity.display());
        let identities = |list: &str| vec![("PENSION_GATEWAY__STORAGE__ENCRYPTION__IDENTITY_FILES", list.to_string())];

        let output = gateway.cli(&["storage", "verify"], &identities(&only_new));
        assert_eq!(output.status.code(), Some(1), "the new identity alone cannot read the old objects yet");
        let output = gateway.cli(&["keys", "rotate"], &identities(&both));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains("3 object(s) re-sealed"), "{stdout}");
        let output = gateway.cli(&["storage", "verify"], &identities(&only_new));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        assert!(stdout.contains("3 object(s) checked, 0 problem(s)"), "{stdout}");
    }

    crate::on_every_backend!(
        storage_verify_names_missing_unreadable_and_altered_objects,
        keys_rotate_moves_every_object_to_a_new_identity,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_sftp_upload_on_s3_leaves_no_plaintext_in_the_bucket() {
        let gateway = TestGateway::spawn(Database::SqliteWithS3).await;
        let sftp = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
        let line = "85073003328;DUPONT;Jean;EMPLOYES;2026-01-01;4200,00\n";
        let content = line.repeat(150_000);
        let mut file = sftp.create("/GP-1001/inbox/affiliations/affiliations.csv").await.unwrap();
        file.write_all(content.as_bytes()).await.unwrap();
        file.shutdown().await.unwrap();

        let uploads = gateway.registry().uploads(None).await.unwrap();
        assert_eq!(uploads.len(), 1);
        let BackendSettings::S3(s3) = &gateway.settings.storage.backend else { unreachable!() };
        let client = s3_client(s3.endpoint.as_deref().unwrap()).await;
        let stored = client
            .get_object()
            .bucket(&s3.bucket)
            .key(format!("{}{}", s3.prefix, uploads[0].object_key))
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert!(stored.len() > content.len(), "the whole file is there, sealed");
        assert!(stored.starts_with(b"age-encryption.org/v1\n"));
        for needle in ["85073003328", "DUPONT", "4200,00"] {
            assert!(!stored.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} stored in clear");
        }
        // The gateway reads it back whole and checks its SHA-256 on the way.
        let bytes = gateway
            .gateway
            .storage()
            .read_verified(&ObjectKey::from_stored(&uploads[0].object_key).unwrap(), &uploads[0].sha256)
            .await
            .unwrap();
        assert_eq!(bytes, content.as_bytes());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_fails_cleanly_when_s3_becomes_unreachable_and_the_server_goes_on() {
        let server = s3_server();
        let target: std::net::SocketAddr = server.endpoint.trim_start_matches("http://").parse().unwrap();
        let link = CuttableLink::to(target).await;
        let overrides = s3_overrides(&format!("http://{}", link.address));
        let gateway = TestGateway::spawn_with(Database::SqliteWithS3, &overrides).await;
        let uploader = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
        let mut file = uploader.create("/GP-1001/inbox/affiliations/big.xlsx").await.unwrap();
        file.write_all(&vec![1u8; 12 * 1024 * 1024]).await.unwrap();
        file.flush().await.unwrap();
        assert!(!gateway.stored_files().await.is_empty(), "parts are already in S3");

        link.cut();
        let mut failure = None;
        for _ in 0..40 {
            if let Err(error) = file.write_all(&vec![2u8; 1024 * 1024]).await {
                failure = Some(error);
                break;
            }
        }
        if failure.is_none() {
            failure = file.shutdown().await.err();
        }
        let failure = failure.expect("the upload fails while S3 is unreachable");
        assert!(failure.to_string().contains("le stockage est indisponible"), "{failure}");
        drop(file);

        // Other sessions are still served while S3 is away.
        let other = gateway.sftp(logins::CONSULTATION, password(PASSWORD)).await.unwrap();
        let listing = other.read_dir("/GP-1001").await.unwrap();
        assert!(listing.into_iter().any(|entry| entry.file_name() == "documents"));
        assert!(gateway.registry().uploads(None).await.unwrap().is_empty(), "nothing recorded as received");

        link.restore();
        let mut left = Vec::new();
        for _ in 0..300 {
            left = gateway.stored_files().await;
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(left.is_empty(), "the multipart upload is aborted once S3 is back: {left:?}");

        let mut again = uploader.create("/GP-1001/inbox/affiliations/again.csv").await.unwrap();
        again.write_all(b"NISS;NOM\n").await.unwrap();
        again.shutdown().await.unwrap();
        assert_eq!(gateway.registry().uploads(None).await.unwrap().len(), 1);
    }

    /// S3 stalls (connections stay open, nothing moves): with the default settings an upload is
    /// refused within 30 s with a clear status, /readyz says the storage is down, nothing is
    /// recorded; when S3 moves again everything resumes, no restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_s3_is_seen_fast_and_the_gateway_resumes_when_it_moves_again() {
        let server = s3_server();
        let target: std::net::SocketAddr = server.endpoint.trim_start_matches("http://").parse().unwrap();
        let link = CuttableLink::to(target).await;
        let mut overrides = s3_overrides(&format!("http://{}", link.address));
        // The defaults this test holds to (the suite's own S3 settings are shorter).
        overrides.retain(|(key, _)| !matches!(*key, "storage.s3.request_timeout_seconds" | "storage.s3.max_attempts"));
        overrides.push(("http.listen", toml::Value::String("127.0.0.1:0".into())));
        let gateway = TestGateway::spawn_with(Database::SqliteWithS3, &overrides).await;
        let http = gateway.http_address.unwrap();
        let uploader = gateway.sftp(logins::INSCRIPTION, password(PASSWORD)).await.unwrap();
        // Like OpenSSH's sftp, wait for the server's answer (this client gives up at 10 s).
        uploader.set_timeout(90);
        let before = b"NISS;NOM\n85073003328;DUPONT\n".to_vec();
        put(&uploader, "/GP-1001/inbox/affiliations/before.csv", &before).await.unwrap();
        assert_eq!(crate::operations::get(http, "/readyz", &[]).await.0, 200);

        link.freeze();
        let started = std::time::Instant::now();
        let refused = put(&uploader, "/GP-1001/inbox/affiliations/stalled.csv", b"NISS;NOM\n").await;
        let waited = started.elapsed();
        let refused = refused.expect_err("the upload is refused while S3 is stalled");
        assert!(refused.to_string().contains("le stockage est indisponible"), "{refused}");
        assert!(waited < std::time::Duration::from_secs(30), "refused after {waited:?}");
        println!("a stalled S3 refused the upload after {waited:?}");
        let (status, reason) = crate::operations::get(http, "/readyz", &[]).await;
        assert_eq!(status, 503, "{reason}");
        assert!(reason.contains("storage"), "{reason}");
        let uploads = gateway.registry().uploads(None).await.unwrap();
        assert_eq!(uploads.len(), 1, "only the upload made before the stall is recorded");

        link.restore();
        let mut ready = 0;
        for _ in 0..150 {
            ready = crate::operations::get(http, "/readyz", &[]).await.0;
            if ready == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert_eq!(ready, 200, "ready again once S3 moves");
        put(&uploader, "/GP-1001/inbox/affiliations/after.csv", b"NISS;NOM\n").await.unwrap();
        assert_eq!(gateway.registry().uploads(None).await.unwrap().len(), 2);
    }
}
