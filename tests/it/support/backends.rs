//! Where a test gateway keeps its state: SQLite or the PostgreSQL server of `scripts/test`,
//! objects on local disk or in the Garage bucket; and the macros that run one scenario on
//! every combination.

/// Where the registry lives for a test run, and the objects: on local disk, or (`…WithS3`) in
/// the Garage bucket that `scripts/test` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
    SqliteWithS3,
    PostgresWithS3,
}

impl Database {
    pub fn is_postgres(self) -> bool {
        matches!(self, Database::Postgres | Database::PostgresWithS3)
    }

    pub fn objects_in_s3(self) -> bool {
        matches!(self, Database::SqliteWithS3 | Database::PostgresWithS3)
    }
}

pub const POSTGRES_URL_VARIABLE: &str = "PENSION_GATEWAY_TEST_POSTGRES_URL";

/// The S3 server of `scripts/test` (`scripts/garage start` prints these).
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub forbidden_bucket: String,
}

/// A variable that `scripts/test` sets when it starts the service `started_by`.
pub(super) fn required_variable(name: &str, started_by: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the suite with scripts/test, which starts {started_by}"))
}

pub fn s3_server() -> S3Server {
    let variable = |name: &str| required_variable(name, "Garage (scripts/garage)");
    S3Server {
        endpoint: variable("PENSION_GATEWAY_TEST_S3_ENDPOINT"),
        bucket: variable("PENSION_GATEWAY_TEST_S3_BUCKET"),
        forbidden_bucket: variable("PENSION_GATEWAY_TEST_S3_FORBIDDEN_BUCKET"),
    }
}

/// A client of the test S3 server, to look at the bucket behind the gateway's back.
pub async fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("garage"))
        .endpoint_url(endpoint)
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&shared).force_path_style(true).build())
}

/// Settings that put the objects under a fresh prefix of the test bucket.
pub fn s3_overrides(endpoint: &str) -> Vec<(&'static str, toml::Value)> {
    let server = s3_server();
    let text = |s: &str| toml::Value::String(s.to_string());
    vec![
        ("storage.backend", text("s3")),
        ("storage.s3.bucket", text(&server.bucket)),
        ("storage.s3.endpoint", text(endpoint)),
        ("storage.s3.region", text("garage")),
        ("storage.s3.force_path_style", toml::Value::Boolean(true)),
        ("storage.s3.prefix", text(&format!("test-{:016x}", rand::random::<u64>()))),
        ("storage.s3.part_size_mib", toml::Value::Integer(5)),
        ("storage.s3.request_timeout_seconds", toml::Value::Integer(10)),
        ("storage.s3.max_attempts", toml::Value::Integer(3)),
    ]
}

/// A test database on the PostgreSQL server of `scripts/test`: one fresh database per gateway.
/// Returns the database's URL and its name (to drop it with [`drop_postgres_database`]).
pub(super) async fn postgres_database() -> (String, String) {
    let Ok(server) = std::env::var(POSTGRES_URL_VARIABLE) else {
        panic!("{POSTGRES_URL_VARIABLE} is not set: run the suite with scripts/test, which starts PostgreSQL");
    };
    sqlx::any::install_default_drivers();
    let name = format!("gw_test_{:016x}", rand::random::<u64>());
    let pool = sqlx::AnyPool::connect(&server).await.expect("connect to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.expect("create database");
    pool.close().await;
    let base = server.rsplit_once('/').map(|(base, _)| base).unwrap_or(&server);
    (format!("{base}/{name}"), name)
}

/// Drops a test database, whoever is still connected to it. Runs on a thread of its own: it
/// is called while a test's runtime is being torn down.
pub(super) fn drop_postgres_database(name: String) {
    let Ok(server) = std::env::var(POSTGRES_URL_VARIABLE) else { return };
    let dropped = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        runtime.block_on(async {
            let pool = sqlx::AnyPool::connect(&server).await.ok()?;
            let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let result = sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&pool).await;
            pool.close().await;
            result.ok()
        })
    })
    .join();
    if !matches!(dropped, Ok(Some(_))) {
        eprintln!("a test database could not be dropped: it stays on the test server");
    }
}

/// The matrix: each named async test on {SQLite, PostgreSQL} × {local disk, S3 (Garage)}.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_databases!($($name),*);
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Database::SqliteWithS3).await
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Database::PostgresWithS3).await
                }
            )*
        }
    };
}

/// Runs each named async test function once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Database::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Database::Postgres).await
                }
            )*
        }
    };
}
