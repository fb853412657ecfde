//! [`Postgres`]: one connection pool and one schema, shared by every store in this crate.

use std::sync::Arc;
use std::time::Duration;

use llmkit_core::{Error, Result};

use crate::error::pool_err;

/// A pooled PostgreSQL handle: the connection pool, the schema every table lives in, and the
/// migrations. Cheap to clone (an `Arc`); build it once per process with [`Postgres::builder`]
/// and hand clones to the stores.
///
/// Nothing connects until the first call: a process starts while the database is down and
/// its calls fail with [`PgError::Unavailable`](crate::PgError::Unavailable) until it is back.
#[derive(Clone)]
pub struct Postgres {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: deadpool_postgres::Pool,
    pub(crate) schema: String,
    tls: bool,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may hold a password: only the schema and pool shape are shown.
        f.debug_struct("Postgres")
            .field("schema", &self.inner.schema)
            .field("max_connections", &self.inner.pool.status().max_size)
            .field("tls", &self.inner.tls)
            .finish_non_exhaustive()
    }
}

/// Settings for [`Postgres`]. Defaults: schema `llmkit`, 8 connections, no TLS, 5 s to connect,
/// 10 s to wait for a free connection.
#[must_use]
pub struct PostgresBuilder {
    url: String,
    schema: String,
    max_connections: usize,
    connect_timeout: Duration,
    wait_timeout: Duration,
    tls: Option<rustls::ClientConfig>,
}

impl std::fmt::Debug for PostgresBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBuilder")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Checks a schema, table or collection name: `[a-z_][a-z0-9_]*`, at most 48 bytes (room for
/// prefixes within PostgreSQL's 63-byte identifiers), so it can be spliced into SQL safely.
pub(crate) fn check_ident(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "{what} `{name}` must be 1-48 characters of a-z, 0-9 and '_', not starting with a digit"
        )))
    }
}

impl PostgresBuilder {
    /// The schema holding every table (created by [`Postgres::migrate`]).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Pool size: at most this many connections are open at once.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long opening one connection may take before the call fails as unavailable.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// How long a call waits for a free pooled connection before failing as unavailable.
    pub fn wait_timeout(mut self, t: Duration) -> Self {
        self.wait_timeout = t;
        self
    }

    /// Encrypts connections with rustls using this client configuration (roots, client
    /// certificates). Pair it with `sslmode=require` in the URL so a server without TLS is
    /// refused instead of silently used in clear text.
    pub fn tls(mut self, config: rustls::ClientConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Builds the pool. Fails only on a malformed URL or name; connections open on first use.
    pub fn build(self) -> Result<Postgres> {
        check_ident("schema", &self.schema)?;
        let mut config: tokio_postgres::Config = self.url.parse().map_err(|_| {
            // The parser's message may quote the URL, password included: not repeated here.
            Error::config("the PostgreSQL connection string is not a valid URL or key=value list")
        })?;
        config.connect_timeout(self.connect_timeout);
        let manager_config = deadpool_postgres::ManagerConfig {
            // Fast: a connection whose socket closed is dropped, not handed out; after a server
            // restart the next call opens fresh connections instead of failing on dead ones.
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        };
        let tls = self.tls.is_some();
        let manager = match self.tls {
            Some(tls) => deadpool_postgres::Manager::from_config(
                config,
                tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                manager_config,
            ),
            None => deadpool_postgres::Manager::from_config(
                config,
                tokio_postgres::NoTls,
                manager_config,
            ),
        };
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(self.max_connections)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(self.connect_timeout))
            .wait_timeout(Some(self.wait_timeout))
            .build()
            .map_err(|e| Error::config(format!("postgres pool: {e}")))?;
        Ok(Postgres {
            inner: Arc::new(Inner {
                pool,
                schema: self.schema,
                tls,
            }),
        })
    }
}

/// rustls client settings trusting the PEM certificates in `ca_pem` (a private CA or the
/// server's own certificate), using the aws-lc-rs provider reqwest already builds.
pub fn tls_config_from_pem(ca_pem: &[u8]) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(ca_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config(format!("CA certificate PEM: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    // A system bundle may hold a few certificates webpki cannot use; those are skipped.
    let (added, _skipped) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::config("no usable certificate found in the CA PEM"));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Postgres {
    /// Settings for a pool on `url` (`postgres://user:password@host:port/db?sslmode=...` or a
    /// key=value list). See [`PostgresBuilder`] for the defaults.
    pub fn builder(url: impl Into<String>) -> PostgresBuilder {
        PostgresBuilder {
            url: url.into(),
            schema: "llmkit".to_owned(),
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(10),
            tls: None,
        }
    }

    /// A pool with the defaults.
    pub fn connect(url: impl Into<String>) -> Result<Self> {
        Self::builder(url).build()
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// A pooled connection, or [`PgError::Unavailable`](crate::PgError::Unavailable).
    pub(crate) async fn conn(&self) -> Result<deadpool_postgres::Object> {
        self.inner.pool.get().await.map_err(|e| pool_err(&e))
    }

    /// `"schema".name`, for splicing a checked table name into SQL.
    pub(crate) fn table(&self, name: &str) -> String {
        format!("\"{}\".{name}", self.inner.schema)
    }
}
