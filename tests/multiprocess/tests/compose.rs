//! `deploy/compose.yaml` says what docs/scale-out.md says it does: it names Redis and
//! PostgreSQL, and Redis keeps budgets across a restart (append-only file) and never evicts them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[test]
fn compose_names_redis_and_postgres_with_a_durable_redis() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/compose.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let compose: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let services = &compose["services"];
    assert!(
        services["postgres"]["image"]
            .as_str()
            .unwrap()
            .starts_with("postgres:")
    );
    assert!(
        services["redis"]["image"]
            .as_str()
            .unwrap()
            .starts_with("redis:7")
    );
    let command: Vec<&str> = services["redis"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let after = |flag: &str| {
        command
            .iter()
            .position(|a| *a == flag)
            .and_then(|i| command.get(i + 1))
            .copied()
    };
    assert_eq!(after("--appendonly"), Some("yes"));
    assert_eq!(after("--maxmemory-policy"), Some("noeviction"));
}
