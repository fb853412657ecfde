//! The shared connection and the error every store returns.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use llmkit_core::{Error, ErrorKind};
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Deletes `KEYS[1]` only if it holds `ARGV[1]` (compare-and-delete in one step).
static DEL_IF_EQUAL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// What went wrong talking to Redis. Converts into an [`llmkit_core::Error`] of kind
/// [`ErrorKind::Transport`] (Redis unreachable, timed out, or refused the command) or
/// [`ErrorKind::InvalidResponse`] (a stored value this version cannot read). Messages never carry
/// the connection URL or its password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL could not be parsed (the URL itself is not repeated: it may hold a password).
    #[error("invalid redis url: {0}")]
    Url(String),
    /// Redis could not be reached or failed the command.
    #[error("redis {op} failed: {source}")]
    Redis {
        /// The operation (`cache get`, `budget reserve`, …).
        op: &'static str,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// A stored value could not be decoded.
    #[error("redis {op}: stored value is unreadable: {detail}")]
    Decode {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        let kind = match &e {
            StoreError::Url(_) => ErrorKind::Config,
            StoreError::Redis { .. } => ErrorKind::Transport,
            StoreError::Decode { .. } => ErrorKind::InvalidResponse,
        };
        Error::new(kind, e.to_string())
            .with_provider("redis")
            .with_source(e)
    }
}

/// Maps a client error of `op` into the core error.
pub(crate) fn failed(op: &'static str) -> impl FnOnce(redis::RedisError) -> Error {
    move |source| StoreError::Redis { op, source }.into()
}

/// Maps a decoding failure of `op` into the core error.
pub(crate) fn unreadable(op: &'static str, detail: impl fmt::Display) -> Error {
    StoreError::Decode {
        op,
        detail: detail.to_string(),
    }
    .into()
}

/// One multiplexed, self-reconnecting connection to Redis plus the key prefix every store uses.
/// Cheap to clone; clones share the connection.
///
/// Defaults: prefix `llmkit`, 1 s to connect, 1 s per command, one immediate reconnection
/// attempt per failed command (a down Redis fails a call in about a second instead of hanging
/// it; the next call tries again).
#[derive(Clone)]
pub struct RedisConnection {
    manager: ConnectionManager,
    prefix: Arc<str>,
}

impl fmt::Debug for RedisConnection {
    // The URL may carry a password: it is not kept, so it cannot be printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// A connection to `url` (`redis://[:password@]host:port[/db]`, `rediss://` is not built
    /// in) with the defaults above. Connects lazily on first use, so a service starts even while
    /// Redis is down; call within a tokio runtime.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, Duration::from_secs(1), Duration::from_secs(1))
    }

    /// Like [`open`](Self::open) with explicit connect and per-command timeouts.
    pub fn open_with(
        url: &str,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Self, StoreError> {
        // The client's own message can echo parts of the URL: keep only its kind.
        let client =
            redis::Client::open(url).map_err(|e| StoreError::Url(format!("{:?}", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let manager =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|source| {
                StoreError::Redis {
                    op: "connect",
                    source,
                }
            })?;
        Ok(RedisConnection {
            manager,
            prefix: Arc::from("llmkit"),
        })
    }

    /// Prefixes every key with `prefix:` (default `llmkit`), so several services or test runs
    /// can share one Redis.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix);
        self
    }

    /// The key `prefix:kind:name`.
    pub(crate) fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.prefix)
    }

    /// A handle to send commands on (a clone of the shared connection).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// Deletes `key` if it holds `value` (compare-and-delete in one step).
    pub(crate) async fn del_if_equal(
        &self,
        op: &'static str,
        key: String,
        value: &str,
    ) -> llmkit_core::Result<()> {
        let mut conn = self.conn();
        DEL_IF_EQUAL
            .key(key)
            .arg(value)
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(failed(op))?;
        Ok(())
    }

    /// `PING`: for readiness checks.
    pub async fn ping(&self) -> llmkit_core::Result<()> {
        let mut conn = self.conn();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(failed("ping"))
    }
}
