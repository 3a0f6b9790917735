//! The reading child process. Every uploaded spreadsheet is parsed by the gateway's own binary
//! under a hidden subcommand ([`SUBCOMMAND`]), in a process of its own: a file that makes the
//! parser allocate terabytes, loop, or crash ends that process, never the server.
//!
//! The child confines itself before it reads a byte — an address-space limit, a CPU-time
//! limit, no core dump, no file it could write, no new descriptor of any kind (no file, socket
//! or pipe can be opened: `RLIMIT_NOFILE` is 0), no new process for a non-root user, killed
//! with its parent — and reads only its standard input: a one-line request, then the file's
//! bytes. (It runs as the gateway's user; a system-call filter or namespaces would confine a
//! parser that was subverted further — calamine is memory-safe Rust, so that is defence in
//! depth not built here.) It answers one
//! versioned message on standard output. The parent gives it an empty environment and no
//! descriptor but the three pipes, kills it at the wall-clock deadline, caps what it may
//! answer, and turns every death, kill or malformed answer into a [`ReadError`] that the
//! uploader reads in the report. At most `concurrency` children run at once.

use std::io::{BufRead, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use super::read::{read, Cell, LimitBreach, ReadError, ReadLimits, Sheet, MAX_CELL_CHARACTERS, MAX_COLUMNS};
use super::schema::FileFormat;
use super::templates::{read_meta, Meta};

/// The hidden subcommand of `pension-gateway` that runs the child.
pub const SUBCOMMAND: &str = "read-spreadsheet";
/// Version of the request and answer messages; parent and child are the same binary, but an
/// upgrade can replace the file between a parent's start and its child's.
pub const PROTOCOL_VERSION: u32 = 1;
/// The child's exit code when it cannot confine itself or finds a descriptor it should not have.
pub const EXIT_NOT_CONFINED: u8 = 3;
/// The child's exit code for a request it cannot understand.
pub const EXIT_BAD_REQUEST: u8 = 4;

const MAX_REQUEST_LINE: u64 = 64 * 1024;
const MAX_DIAGNOSTICS: usize = 8 * 1024;
const MIB: u64 = 1024 * 1024;

/// What the parent asks, on the first line of the child's standard input.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    version: u32,
    file_name: String,
    formats: Vec<FileFormat>,
    limits: ReadLimits,
    /// Also read the hidden META sheet of an annual-adjustment template.
    template_meta: bool,
}

/// What a readable file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contents {
    pub sheet: Sheet,
    pub meta: Option<Meta>,
}

/// The child's answer on its standard output.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    version: u32,
    result: Result<Contents, ReadError>,
}

/// How the children are run (`ingest.*` settings).
#[derive(Debug, Clone)]
pub struct ReaderSettings {
    /// The gateway binary that runs the child.
    pub program: PathBuf,
    /// Address-space limit of a child.
    pub memory_mib: u64,
    /// Wall-clock deadline, and CPU-time limit, of a child.
    pub time_limit: Duration,
    /// Children running at the same time.
    pub concurrency: usize,
}

/// The gateway itself failed to read a file (not the file's fault): the work is retried.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("cannot start the spreadsheet reader {program}")]
    Start {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the spreadsheet reader could not confine itself: {diagnostics}")]
    NotConfined { diagnostics: String },
    #[error("talking to the spreadsheet reader failed")]
    Pipe(#[source] std::io::Error),
    /// The reader program does not speak this gateway's protocol (an upgrade in progress, or
    /// `ingest.reader_program` names another program): not the file's fault.
    #[error("the spreadsheet reader does not understand this gateway: {diagnostics}")]
    Protocol { diagnostics: String },
}

/// Runs reading children for the server and the CLI.
#[derive(Debug, Clone)]
pub struct ReaderProcess {
    settings: Arc<ReaderSettings>,
    slots: Arc<Semaphore>,
}

impl ReaderProcess {
    pub fn new(settings: ReaderSettings) -> Self {
        let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        Self { settings: Arc::new(settings), slots }
    }

    pub fn settings(&self) -> &ReaderSettings {
        &self.settings
    }

    /// Reads the first sheet of a file (and its META sheet when `template_meta`) in a child.
    /// `Ok(Err(_))` is a file that cannot be read: a report says why.
    pub async fn read(
        &self,
        file_name: &str,
        bytes: Bytes,
        formats: &[FileFormat],
        limits: &ReadLimits,
        template_meta: bool,
    ) -> Result<Result<Contents, ReadError>, ReaderError> {
        let _slot = self.slots.acquire().await.map_err(|_| ReaderError::Pipe(std::io::ErrorKind::Other.into()))?;
        let request = Request {
            version: PROTOCOL_VERSION,
            file_name: file_name.to_string(),
            formats: formats.to_vec(),
            limits: *limits,
            template_meta,
        };
        let mut request_line = serde_json::to_vec(&request).map_err(|e| ReaderError::Pipe(e.into()))?;
        request_line.push(b'\n');
        let settings = &self.settings;
        let seconds = settings.time_limit.as_secs().max(1);
        let mut child = tokio::process::Command::new(&settings.program)
            .arg(SUBCOMMAND)
            .arg("--memory-mib")
            .arg(settings.memory_mib.to_string())
            .arg("--cpu-seconds")
            .arg(seconds.to_string())
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ReaderError::Start { program: settings.program.clone(), source })?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ReaderError::Pipe(std::io::ErrorKind::BrokenPipe.into()));
        };
        // The child may stop reading (it died, or refused the size): a broken pipe here is
        // reported through its exit status instead.
        let feed = async move {
            let _ = stdin.write_all(&request_line).await;
            let _ = stdin.write_all(&bytes).await;
            let _ = stdin.shutdown().await;
        };
        let answer_cap = settings.memory_mib.saturating_mul(MIB);
        let talk = async {
            let ((), answer, diagnostics) =
                tokio::join!(feed, read_capped(stdout, answer_cap), read_capped(stderr, MAX_DIAGNOSTICS as u64));
            let status = child.wait().await;
            (answer, diagnostics, status)
        };
        let (answer, diagnostics, status) = match tokio::time::timeout(settings.time_limit, talk).await {
            Ok(done) => done,
            Err(_) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                return Ok(Err(stopped_by(LimitBreach::Time { seconds })));
            }
        };
        let (answer, answer_overflowed) = answer.map_err(ReaderError::Pipe)?;
        let (diagnostics, _) = diagnostics.map_err(ReaderError::Pipe)?;
        let status = status.map_err(ReaderError::Pipe)?;
        let diagnostics = String::from_utf8_lossy(&diagnostics).into_owned();
        if answer_overflowed {
            return Ok(Err(ReadError::OutsideLimits(LimitBreach::Answer { mib: settings.memory_mib })));
        }
        if status.code() == Some(i32::from(EXIT_NOT_CONFINED)) {
            return Err(ReaderError::NotConfined { diagnostics });
        }
        // Exit 2 is the argument parser's refusal: a reader of another version.
        if matches!(status.code(), Some(code) if code == i32::from(EXIT_BAD_REQUEST) || code == 2) {
            return Err(ReaderError::Protocol { diagnostics });
        }
        if !status.success() {
            let breach = breach_of(status, &diagnostics, settings.memory_mib, seconds);
            tracing::warn!(file_format = ?FileFormat::from_extension(file_name), %breach, "a spreadsheet reader was stopped");
            return Ok(Err(stopped_by(breach)));
        }
        match parse_answer(&answer, limits) {
            Ok(result) => Ok(result),
            Err(AnswerProblem::OtherVersion(version)) => {
                Err(ReaderError::Protocol { diagnostics: format!("it answered in version {version}") })
            }
            Err(AnswerProblem::Malformed) => {
                Ok(Err(ReadError::OutsideLimits(LimitBreach::Stopped { how: "its answer was malformed".into() })))
            }
        }
    }
}

/// Why an answer cannot be used.
#[derive(Debug, PartialEq, Eq)]
enum AnswerProblem {
    OtherVersion(u32),
    Malformed,
}

/// Checks the answer's shape: the child is not trusted to keep its own limits.
fn parse_answer(answer: &[u8], limits: &ReadLimits) -> Result<Result<Contents, ReadError>, AnswerProblem> {
    let answer: Answer = serde_json::from_slice(answer).map_err(|_| AnswerProblem::Malformed)?;
    if answer.version != PROTOCOL_VERSION {
        return Err(AnswerProblem::OtherVersion(answer.version));
    }
    let within = |text: &str| text.len() <= 4 * MAX_CELL_CHARACTERS;
    match &answer.result {
        Ok(contents) => {
            let rows = &contents.sheet.rows;
            let cells_fit = |cells: &[Cell]| {
                cells.len() <= MAX_COLUMNS as usize
                    && cells.iter().all(|cell| match cell {
                        Cell::Text(text) | Cell::Error(text) => within(text),
                        _ => true,
                    })
            };
            let meta_fits = contents.meta.as_ref().is_none_or(|meta| {
                meta.rows.len() <= limits.max_rows + 50
                    && [&meta.template_id, &meta.contract].iter().all(|text| within(text))
                    && meta.rows.iter().all(|(id, hash)| within(id) && within(hash))
            });
            if rows.len() > limits.max_rows + 50 || !rows.iter().all(|row| cells_fit(&row.cells)) || !meta_fits {
                return Err(AnswerProblem::Malformed);
            }
        }
        Err(error) => {
            if error.to_string().len() > 4096 {
                return Err(AnswerProblem::Malformed);
            }
        }
    }
    Ok(answer.result)
}

/// A child stopped by one of its limits, counted in the metrics.
fn stopped_by(breach: LimitBreach) -> ReadError {
    let limit = match &breach {
        LimitBreach::Memory { .. } => "memory",
        LimitBreach::Time { .. } => "time",
        LimitBreach::Answer { .. } => "answer",
        LimitBreach::Stopped { .. } => "stopped",
    };
    let metrics = crate::telemetry::metrics::metrics();
    crate::telemetry::metrics::Metrics::count(&metrics.reader_stopped, "limit", limit, 1);
    ReadError::OutsideLimits(breach)
}

/// What a child's death says about the file.
fn breach_of(status: std::process::ExitStatus, diagnostics: &str, memory_mib: u64, seconds: u64) -> LimitBreach {
    // The allocator's failure message names the limit most files hit; a stack overflow is an
    // abort too, with its own message.
    if diagnostics.contains("memory allocation of") {
        return LimitBreach::Memory { mib: memory_mib };
    }
    if diagnostics.contains("has overflowed its stack") {
        return LimitBreach::Stopped { how: "its structure is nested too deeply".into() };
    }
    match status.signal() {
        Some(signal) if signal == rustix::process::Signal::XCPU.as_raw() => LimitBreach::Time { seconds },
        Some(signal) if signal == rustix::process::Signal::KILL.as_raw() => {
            LimitBreach::Stopped { how: "it was killed".into() }
        }
        Some(signal) => LimitBreach::Stopped { how: format!("signal {signal}") },
        None => LimitBreach::Stopped { how: format!("exit code {}", status.code().unwrap_or(-1)) },
    }
}

/// Reads to the end, keeping at most `cap` bytes; `true` when there was more (then stops
/// reading, so that a child that answers too much fails on its next write).
async fn read_capped(mut from: impl AsyncRead + Unpin, cap: u64) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            return Ok((kept, false));
        }
        if kept.len() as u64 + n as u64 > cap {
            return Ok((kept, true));
        }
        kept.extend_from_slice(&buffer[..n]);
    }
}

/// The child: confines itself, reads one request and one file from standard input, answers
/// on standard output. Returns the process exit code.
pub fn run_child(memory_mib: u64, cpu_seconds: u64) -> u8 {
    if let Err(why) = confine(memory_mib, cpu_seconds) {
        eprintln!("{why}");
        return EXIT_NOT_CONFINED;
    }
    let mut input = std::io::stdin().lock();
    let mut line = Vec::new();
    let request: Request = match (&mut input).take(MAX_REQUEST_LINE).read_until(b'\n', &mut line) {
        Ok(_) => match serde_json::from_slice(&line) {
            Ok(request) => request,
            Err(error) => {
                eprintln!("malformed request: {error}");
                return EXIT_BAD_REQUEST;
            }
        },
        Err(error) => {
            eprintln!("cannot read the request: {error}");
            return EXIT_BAD_REQUEST;
        }
    };
    if request.version != PROTOCOL_VERSION {
        eprintln!("request version {} (this reader speaks {PROTOCOL_VERSION})", request.version);
        return EXIT_BAD_REQUEST;
    }
    let mut bytes = Vec::new();
    if let Err(error) = input.take(request.limits.max_file_bytes.saturating_add(1)).read_to_end(&mut bytes) {
        eprintln!("cannot read the file: {error}");
        return EXIT_BAD_REQUEST;
    }
    let result = if bytes.len() as u64 > request.limits.max_file_bytes {
        Err(ReadError::TooLarge { limit: request.limits.max_file_bytes })
    } else {
        // A parser that panics on a file has refused it; the answer says so.
        std::panic::catch_unwind(|| {
            let sheet = read(&request.file_name, &bytes, &request.formats, &request.limits)?;
            let meta = if request.template_meta { read_meta(&bytes) } else { None };
            Ok(Contents { sheet, meta })
        })
        .unwrap_or_else(|_| {
            Err(ReadError::Unreadable {
                format: FileFormat::from_extension(&request.file_name).map(|f| f.as_str()).unwrap_or("").to_string(),
                detail: "the reader failed on this file".to_string(),
            })
        })
    };
    drop(bytes);
    let mut output = std::io::BufWriter::new(std::io::stdout().lock());
    let answer = Answer { version: PROTOCOL_VERSION, result };
    match serde_json::to_writer(&mut output, &answer).map_err(std::io::Error::from).and_then(|()| output.flush()) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("cannot send the answer: {error}");
            1
        }
    }
}

/// Limits the child sets on itself before it reads anything.
fn confine(memory_mib: u64, cpu_seconds: u64) -> Result<(), String> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let limit = |resource: Resource, soft: u64, hard: u64, name: &str| {
        setrlimit(resource, Rlimit { current: Some(soft), maximum: Some(hard) })
            .map_err(|e| format!("cannot limit {name}: {e}"))
    };
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| format!("cannot tie the reader to its parent: {e}"))?;
    rustix::thread::set_no_new_privs(true).map_err(|e| format!("cannot drop privileges: {e}"))?;
    // A core dump would write the file's personal data to disk.
    limit(Resource::Core, 0, 0, "core dumps")?;
    limit(Resource::Fsize, 0, 0, "file writes")?;
    limit(Resource::As, memory_mib.saturating_mul(MIB), memory_mib.saturating_mul(MIB), "memory")?;
    // SIGXCPU at the soft limit, SIGKILL one second later if it is caught.
    limit(Resource::Cpu, cpu_seconds, cpu_seconds.saturating_add(1), "CPU time")?;
    // The parent's descriptors are close-on-exec; one left open by whoever started the gateway
    // (a supervisor, a test harness) is closed here before any byte of the file is read.
    for fd in inherited_descriptors().map_err(|e| format!("cannot list open descriptors: {e}"))? {
        nix::unistd::close(fd).map_err(|e| format!("cannot close inherited descriptor {fd}: {e}"))?;
    }
    if let Some(fd) = inherited_descriptors().map_err(|e| format!("cannot list open descriptors: {e}"))?.first() {
        return Err(format!("descriptor {fd} is still open"));
    }
    // No process for a non-root user (root is exempt from this limit).
    limit(Resource::Nproc, 0, 0, "processes")?;
    // Descriptors 0, 1 and 2 only, from now on: a new descriptor's number would have to be
    // below 0, so no file, socket or pipe can be opened, even after closing one.
    limit(Resource::Nofile, 0, 0, "open files")
}

/// Open descriptors beyond standard input, output and error.
fn inherited_descriptors() -> std::io::Result<Vec<i32>> {
    let listed: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    // The listing's own descriptor was among them; it is closed now.
    Ok(listed.into_iter().filter(|fd| std::fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed answer of one row holding `cells`.
    fn one_row(cells: Vec<Cell>) -> Vec<u8> {
        let row = super::super::read::SheetRow { number: 1, cells };
        let answer =
            Answer { version: PROTOCOL_VERSION, result: Ok(Contents { sheet: Sheet { rows: vec![row] }, meta: None }) };
        serde_json::to_vec(&answer).unwrap()
    }

    #[test]
    fn an_answer_too_wide_or_of_another_version_is_malformed() {
        let limits = ReadLimits::default();
        let wide = one_row(vec![Cell::Empty; MAX_COLUMNS as usize + 1]);
        assert_eq!(parse_answer(&wide, &limits), Err(AnswerProblem::Malformed));
        let long = one_row(vec![Cell::Text("x".repeat(200_000))]);
        assert_eq!(parse_answer(&long, &limits), Err(AnswerProblem::Malformed), "a cell longer than any cell");
        let other = Answer { version: PROTOCOL_VERSION + 1, result: Err(ReadError::TooLarge { limit: 1 }) };
        let bytes = serde_json::to_vec(&other).unwrap();
        assert_eq!(parse_answer(&bytes, &limits), Err(AnswerProblem::OtherVersion(PROTOCOL_VERSION + 1)));
        assert_eq!(parse_answer(b"{\"version\":1,", &limits), Err(AnswerProblem::Malformed));
        let refused = Answer { version: PROTOCOL_VERSION, result: Err(ReadError::TooLarge { limit: 1 }) };
        let bytes = serde_json::to_vec(&refused).unwrap();
        assert_eq!(parse_answer(&bytes, &limits).unwrap(), Err(ReadError::TooLarge { limit: 1 }));
    }

    #[test]
    fn deaths_are_named_by_the_limit_they_hit() {
        let by_signal = |signal: i32| std::process::ExitStatus::from_raw(signal);
        let abort = rustix::process::Signal::ABORT.as_raw();
        assert_eq!(
            breach_of(by_signal(abort), "memory allocation of 24000000000000 bytes failed\n", 512, 60),
            LimitBreach::Memory { mib: 512 }
        );
        assert_eq!(
            breach_of(by_signal(rustix::process::Signal::XCPU.as_raw()), "", 512, 60),
            LimitBreach::Time { seconds: 60 }
        );
        assert!(matches!(breach_of(by_signal(abort), "", 512, 60), LimitBreach::Stopped { .. }));
    }
}
