//! The clients that drive a test gateway: OpenSSH `sftp` and `ssh`, PuTTY's `psftp`, rclone
//! and the russh-sftp client; and a TCP link a test can cut.

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKeyWithHashAlg;
use russh_sftp::client::SftpSession;

use super::TestGateway;

impl TestGateway {
    fn ssh_options(&self) -> Vec<String> {
        [
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=20",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn askpass(&self, password: &str) -> PathBuf {
        let path = self.key_dir.path().join(format!("askpass-{:x}", rand::random::<u32>()));
        let quoted = password.replace('\'', "'\\''");
        std::fs::write(&path, format!("#!/bin/sh\necho '{quoted}'\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        path
    }

    fn authenticated_command(&self, program: &str, login: &str, auth: &ClientAuth) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        command.args(self.ssh_options());
        match auth {
            ClientAuth::Password(password) => {
                command
                    .env("SSH_ASKPASS", self.askpass(password))
                    .env("SSH_ASKPASS_REQUIRE", "force")
                    .env("DISPLAY", "none")
                    .args(["-o", "BatchMode=no", "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1"]);
            }
            ClientAuth::Key(path) => {
                command.args(["-o", "BatchMode=yes", "-o", "PasswordAuthentication=no", "-o", "IdentitiesOnly=yes"]);
                command.arg("-i").arg(path);
            }
        }
        let _ = login;
        command.stdin(std::process::Stdio::null()).kill_on_drop(true);
        command
    }

    /// Runs OpenSSH `sftp` in batch mode with these commands.
    pub async fn openssh_sftp(&self, login: &str, auth: ClientAuth, commands: &str) -> Output {
        let batch = self.key_dir.path().join(format!("batch-{:x}", rand::random::<u32>()));
        std::fs::write(&batch, commands).unwrap();
        let mut command = self.authenticated_command("sftp", login, &auth);
        command.arg("-b").arg(&batch).arg("-P").arg(self.address.port().to_string());
        command.arg(format!("{login}@127.0.0.1"));
        tokio::time::timeout(Duration::from_secs(300), command.output())
            .await
            .expect("sftp finished in time")
            .expect("sftp runs")
    }

    /// Runs OpenSSH `ssh` with a remote command.
    pub async fn openssh_exec(&self, login: &str, auth: ClientAuth, remote_command: &str) -> Output {
        let mut command = self.authenticated_command("ssh", login, &auth);
        command.arg("-p").arg(self.address.port().to_string()).arg(format!("{login}@127.0.0.1")).arg(remote_command);
        tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .expect("ssh finished in time")
            .expect("ssh runs")
    }

    // ---- PuTTY psftp and rclone ---------------------------------------------------------

    /// The SHA-256 fingerprint of the gateway's host key, as clients pin it.
    pub fn host_key_fingerprint(&self) -> String {
        let key = russh::keys::load_secret_key(&self.settings.server.host_key, None).expect("host key");
        key.public_key().fingerprint(russh::keys::HashAlg::Sha256).to_string()
    }

    /// Runs PuTTY's `psftp -batch` (the engine of WinSCP and FileZilla) with these commands,
    /// the host key pinned and the password from a file, in a home of its own.
    pub async fn psftp(&self, login: &str, password: &str, commands: &str) -> Output {
        let home = self.key_dir.path().join(format!("putty-home-{:x}", rand::random::<u32>()));
        std::fs::create_dir_all(&home).unwrap();
        let batch = home.join("batch");
        std::fs::write(&batch, commands).unwrap();
        let password_file = home.join("password");
        std::fs::write(&password_file, password).unwrap();
        let mut command = tokio::process::Command::new("psftp");
        command
            .env("HOME", &home)
            .arg("-batch")
            .arg("-P")
            .arg(self.address.port().to_string())
            .arg("-l")
            .arg(login)
            .arg("-pwfile")
            .arg(&password_file)
            .arg("-hostkey")
            .arg(self.host_key_fingerprint())
            .arg("-b")
            .arg(&batch)
            .arg("127.0.0.1")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("psftp finished in time")
            .expect("psftp runs")
    }

    /// Runs `rclone` with an `sftp` remote named `gateway:` for this login, configured the way
    /// a nightly job would (password obscured by rclone itself, host key pinned).
    pub async fn rclone(&self, login: &str, password: &str, args: &[&str]) -> Output {
        let home = self.key_dir.path().join(format!("rclone-home-{:x}", rand::random::<u32>()));
        std::fs::create_dir_all(&home).unwrap();
        let obscured =
            tokio::process::Command::new("rclone").arg("obscure").arg(password).output().await.expect("rclone runs");
        assert!(obscured.status.success(), "rclone obscure: {}", stderr(&obscured));
        let public_key = russh::keys::load_secret_key(&self.settings.server.host_key, None)
            .expect("host key")
            .public_key()
            .to_openssh()
            .expect("public key");
        let known_hosts = home.join("known_hosts");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{} {public_key}\n", self.address.port())).unwrap();
        let config = home.join("rclone.conf");
        std::fs::write(
            &config,
            format!(
                "[gateway]\ntype = sftp\nhost = 127.0.0.1\nport = {}\nuser = {login}\npass = {}\nknown_hosts_file = {}\n",
                self.address.port(),
                String::from_utf8_lossy(&obscured.stdout).trim(),
                known_hosts.display()
            ),
        )
        .unwrap();
        let mut command = tokio::process::Command::new("rclone");
        command
            .env("HOME", &home)
            .arg("--config")
            .arg(&config)
            .args(["--retries", "1", "--low-level-retries", "1"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("rclone finished in time")
            .expect("rclone runs")
    }

    // ---- russh client ------------------------------------------------------------------

    /// An authenticated russh connection, or the refusal.
    pub async fn connect(
        &self,
        login: &str,
        auth: ClientAuth,
    ) -> Result<russh::client::Handle<TrustingClient>, String> {
        let config = Arc::new(russh::client::Config::default());
        let handle =
            russh::client::connect(config, self.address, TrustingClient).await.map_err(|e| format!("connect: {e}"))?;
        authenticate(handle, login, auth).await
    }

    /// An SFTP session through the russh-sftp client.
    pub async fn sftp(&self, login: &str, auth: ClientAuth) -> Result<SftpClient, String> {
        open_sftp(self.connect(login, auth).await?).await
    }
}

/// An SFTP session from the loopback address `source` (127.0.0.2 and up stand for other
/// machines) to `target` (the gateway, or a balancer in front of it).
pub async fn sftp_from(
    source: &str,
    target: std::net::SocketAddr,
    login: &str,
    auth: ClientAuth,
) -> Result<SftpClient, String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(format!("{source}:0").parse().map_err(|_| "a source address".to_string())?)
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(target).await.map_err(|e| format!("connect: {e}"))?;
    let config = Arc::new(russh::client::Config::default());
    let handle =
        russh::client::connect_stream(config, stream, TrustingClient).await.map_err(|e| format!("connect: {e}"))?;
    open_sftp(authenticate(handle, login, auth).await?).await
}

async fn authenticate(
    mut handle: russh::client::Handle<TrustingClient>,
    login: &str,
    auth: ClientAuth,
) -> Result<russh::client::Handle<TrustingClient>, String> {
    let result = match auth {
        ClientAuth::Password(password) => handle.authenticate_password(login, password).await,
        ClientAuth::Key(path) => {
            let key = russh::keys::load_secret_key(&path, None).map_err(|e| e.to_string())?;
            handle.authenticate_publickey(login, PrivateKeyWithHashAlg::new(Arc::new(key), None)).await
        }
    }
    .map_err(|e| format!("authenticate: {e}"))?;
    if result.success() {
        Ok(handle)
    } else {
        Err("authentication refused".into())
    }
}

async fn open_sftp(handle: russh::client::Handle<TrustingClient>) -> Result<SftpClient, String> {
    let channel = handle.channel_open_session().await.map_err(|e| e.to_string())?;
    channel.request_subsystem(true, "sftp").await.map_err(|e| e.to_string())?;
    let session = SftpSession::new(channel.into_stream()).await.map_err(|e| e.to_string())?;
    Ok(SftpClient { session, handle })
}

/// An SFTP session and the SSH connection it runs on.
pub struct SftpClient {
    pub session: SftpSession,
    pub handle: russh::client::Handle<TrustingClient>,
}

impl std::ops::Deref for SftpClient {
    type Target = SftpSession;
    fn deref(&self) -> &SftpSession {
        &self.session
    }
}

#[derive(Debug, Clone)]
pub enum ClientAuth {
    Password(String),
    Key(PathBuf),
}

/// Writes `bytes` to `remote` as a client would (open, write, close). A refusal says at which
/// step it came: `open: …`, `write: …` or `close: …` (writes are acknowledged late, so most
/// refusals of a WRITE surface at the close).
pub async fn put(sftp: &SftpClient, remote: &str, bytes: &[u8]) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let flags = russh_sftp::protocol::OpenFlags::CREATE
        | russh_sftp::protocol::OpenFlags::TRUNCATE
        | russh_sftp::protocol::OpenFlags::WRITE;
    let mut file = sftp.open_with_flags(remote, flags).await.map_err(|e| format!("open: {e:?}"))?;
    file.write_all(bytes).await.map_err(|e| format!("write: {e:?}"))?;
    file.shutdown().await.map_err(|e| format!("close: {e:?}"))
}

pub fn password(text: &str) -> ClientAuth {
    ClientAuth::Password(text.to_string())
}

/// A russh client that accepts the test server's fresh host key.
pub struct TrustingClient;

impl russh::client::Handler for TrustingClient {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _server_public_key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A TCP relay to a server that a test can cut (every connection closed, new ones dropped at
/// once), freeze (connections stay open and new ones are accepted, but not a byte moves: a
/// stalled server) and restore: the network between the gateway and its S3 server failing.
pub struct CuttableLink {
    pub address: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
    frozen: tokio::sync::watch::Sender<bool>,
    relay: tokio::task::JoinHandle<()>,
}

/// Copies `from` to `to`, holding every read and write while the link is frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        if frozen.wait_for(|frozen| !*frozen).await.is_err() {
            return;
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if frozen.wait_for(|frozen| !*frozen).await.is_err() || to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

impl CuttableLink {
    pub async fn to(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, watch) = tokio::sync::watch::channel(false);
        let (frozen, frozen_watch) = tokio::sync::watch::channel(false);
        let relay = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { return };
                if *watch.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut watch = watch.clone();
                let frozen = frozen_watch.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else { return };
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    tokio::select! {
                        _ = pump(in_read, out_write, frozen.clone()) => {}
                        _ = pump(out_read, in_write, frozen) => {}
                        _ = watch.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { address, cut, frozen, relay }
    }

    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }

    pub fn freeze(&self) {
        let _ = self.frozen.send(true);
    }

    pub fn restore(&self) {
        let _ = self.cut.send(false);
        let _ = self.frozen.send(false);
    }
}

impl Drop for CuttableLink {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

/// The SFTP status of a refused request.
pub fn refusal<T>(result: Result<T, russh_sftp::client::error::Error>) -> russh_sftp::protocol::StatusCode {
    match result {
        Err(russh_sftp::client::error::Error::Status(status)) => status.status_code,
        Err(other) => panic!("expected an SFTP status, got {other:?}"),
        Ok(_) => panic!("expected a refusal, the request succeeded"),
    }
}
