//! `export`: a finished snapshot as one JSON document, streamed row by row.
//!
//! Shape (other tools rely on it): `resource_types`, `resources`, `entitlements`, `grants`,
//! plus `notices` (gaps and unsupported principals), `provisioning_audit` (every grant and
//! revoke, kept across syncs) and `sync` (the run's facts). Rows are
//! sorted by id so two exports of the same tenant compare equal.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use rusqlite::Connection;
use serde_json::{Value, json};

use crate::store::open_snapshot;

pub fn export(input: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let connection = open_snapshot(input)?;
    write!(out, "{{")?;
    write_array(
        out,
        &connection,
        "resource_types",
        "SELECT id, display_name FROM resource_types ORDER BY position",
        |row| Ok(json!({"id": row.get::<_, String>(0)?, "display_name": row.get::<_, String>(1)?})),
    )?;
    write!(out, ",")?;
    write_array(
        out,
        &connection,
        "resources",
        "SELECT resource_type, id, display_name, parent_type, parent_id, profile FROM resources ORDER BY resource_type, id",
        |row| {
            let parent = match (row.get::<_, Option<String>>(3)?, row.get::<_, Option<String>>(4)?) {
                (Some(resource_type), Some(id)) => json!({"resource_type": resource_type, "id": id}),
                _ => Value::Null,
            };
            let profile_text: String = row.get(5)?;
            let profile: Value = serde_json::from_str(&profile_text).unwrap_or(Value::String(profile_text));
            Ok(json!({
                "resource_type": row.get::<_, String>(0)?,
                "id": row.get::<_, String>(1)?,
                "display_name": row.get::<_, String>(2)?,
                "parent": parent,
                "profile": profile,
            }))
        },
    )?;
    write!(out, ",")?;
    write_array(
        out,
        &connection,
        "entitlements",
        "SELECT id, resource_type, resource_id, slug, display_name, purpose FROM entitlements ORDER BY id",
        |row| {
            Ok(json!({
                "id": row.get::<_, String>(0)?,
                "resource_type": row.get::<_, String>(1)?,
                "resource_id": row.get::<_, String>(2)?,
                "slug": row.get::<_, String>(3)?,
                "display_name": row.get::<_, String>(4)?,
                "purpose": row.get::<_, String>(5)?,
            }))
        },
    )?;
    write!(out, ",")?;
    write_array(
        out,
        &connection,
        "grants",
        "SELECT id, entitlement_id, principal_type, principal_id FROM grants ORDER BY id",
        |row| {
            Ok(json!({
                "id": row.get::<_, String>(0)?,
                "entitlement_id": row.get::<_, String>(1)?,
                "principal_type": row.get::<_, String>(2)?,
                "principal_id": row.get::<_, String>(3)?,
            }))
        },
    )?;
    write!(out, ",")?;
    write_array(
        out,
        &connection,
        "notices",
        "SELECT kind, subject, message, missing_permission, resource_type, resource_id FROM notices ORDER BY kind, subject, message",
        |row| {
            Ok(json!({
                "kind": row.get::<_, String>(0)?,
                "subject": row.get::<_, String>(1)?,
                "message": row.get::<_, String>(2)?,
                "missing_permission": row.get::<_, Option<String>>(3)?,
                "resource_type": row.get::<_, Option<String>>(4)?,
                "resource_id": row.get::<_, Option<String>>(5)?,
            }))
        },
    )?;
    write!(out, ",")?;
    write_array(
        out,
        &connection,
        "provisioning_audit",
        "SELECT at, action, entitlement_id, principal_type, principal_id, outcome, grant_id, request_id, error, retried
         FROM provisioning_audit ORDER BY id",
        |row| {
            Ok(json!({
                "at": row.get::<_, String>(0)?,
                "action": row.get::<_, String>(1)?,
                "entitlement_id": row.get::<_, String>(2)?,
                "principal_type": row.get::<_, String>(3)?,
                "principal_id": row.get::<_, String>(4)?,
                "outcome": row.get::<_, String>(5)?,
                "grant_id": row.get::<_, Option<String>>(6)?,
                "request_id": row.get::<_, Option<String>>(7)?,
                "error": row.get::<_, Option<String>>(8)?,
                "retried": row.get::<_, bool>(9)?,
            }))
        },
    )?;
    let sync = connection.query_row(
        "SELECT connector, connector_version, started_at, finished_at, requests, throttled FROM sync_runs WHERE id = 1",
        [],
        |row| {
            Ok(json!({
                "connector": row.get::<_, String>(0)?,
                "connector_version": row.get::<_, String>(1)?,
                "started_at": row.get::<_, String>(2)?,
                "finished_at": row.get::<_, Option<String>>(3)?,
                "requests": row.get::<_, Option<i64>>(4)?,
                "throttled": row.get::<_, Option<i64>>(5)?,
            }))
        },
    )?;
    write!(out, ",\"sync\":{sync}}}")?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

fn write_array(
    out: &mut impl Write,
    connection: &Connection,
    name: &str,
    query: &str,
    to_json: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Value>,
) -> anyhow::Result<()> {
    write!(out, "\"{name}\":[")?;
    let mut statement = connection.prepare(query).with_context(|| format!("cannot read {name}"))?;
    let mut rows = statement.query([])?;
    let mut first = true;
    while let Some(row) = rows.next()? {
        if !first {
            write!(out, ",")?;
        }
        first = false;
        serde_json::to_writer(&mut *out, &to_json(row)?)?;
    }
    write!(out, "]")?;
    Ok(())
}
