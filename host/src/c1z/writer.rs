//! Writes a c1z from a finished snapshot: the rows as protobuf messages in a fresh SQLite
//! database, compacted (VACUUM), compressed with zstd behind the `C1ZF\0` header, and renamed
//! over the output only when complete.
//!
//! The same snapshot gives the same bytes: the sync id is a digest of the run and of every
//! row written, every time comes from the snapshot's sync, rows are inserted in id order, the
//! database is built with fixed settings and rebuilt by VACUUM, and zstd runs single-threaded
//! at a fixed level.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;

use anyhow::Context as _;
use prost::Message as _;
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};
use sha2::{Digest as _, Sha256};

use super::objects::{
    EntitlementRow, GrantRow, ResourceRow, ResourceTypeRow, entitlement_message, grant_message, resource_message,
    resource_type_message,
};
use super::proto::ResourceId;
use super::schema::{OBJECT_TABLES, TABLES, sqlite_time};
use super::{FILE_HEADER, reader};
use crate::store::open_snapshot;

/// zstd level 3 (zstd's default): a few times smaller than SQLite, and fast.
const ZSTD_LEVEL: i32 = 3;

/// What was written.
#[derive(Debug)]
pub struct C1zWritten {
    pub sync_id: String,
    /// The previous sync kept from the c1z that was at the output, so `baton diff` compares them.
    pub previous_sync_id: Option<String>,
}

/// Writes `output` from the snapshot at `snapshot`. A c1z already at `output` gives its latest
/// full sync to the new file as the previous run (as the Go connector's file keeps it).
pub fn write_c1z(snapshot: &Path, output: &Path) -> anyhow::Result<C1zWritten> {
    let source = open_snapshot(snapshot)?;
    let directory = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let work = tempfile::Builder::new().prefix(".c1z-build-").tempdir_in(directory).with_context(|| {
        format!("cannot create a work directory in {}: check that it is writable", directory.display())
    })?;
    let database_path = work.path().join("sync.sqlite");
    let mut database = Connection::open(&database_path)
        .with_context(|| format!("cannot create the c1z database in {}", work.path().display()))?;
    database.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
    database.execute_batch(TABLES).context("cannot create the c1z tables")?;

    let run =
        SnapshotRun::read(&source).with_context(|| format!("cannot read the sync run of {}", snapshot.display()))?;
    let transaction = database.transaction()?;
    let content_digest = copy_objects(&source, &transaction, &run.discovered_at)
        .with_context(|| format!("cannot convert {} to c1z rows", snapshot.display()))?;
    let sync_id = run.sync_id(&content_digest);
    for table in OBJECT_TABLES {
        transaction.execute(&format!("UPDATE {table} SET sync_id = ?1 WHERE sync_id = ''"), [&sync_id])?;
    }
    transaction.execute(
        "INSERT INTO v1_sync_runs (sync_id, started_at, ended_at, sync_token, sync_type, supports_diff, grants_backfilled)
         VALUES (?1, ?2, ?3, '', 'full', 1, 1)",
        params![sync_id, run.started_at, run.ended_at],
    )?;
    transaction.commit()?;
    let previous_sync_id = if output.is_file() {
        carry_over_previous(&mut database, output, work.path(), &sync_id, &run.ended_at)
    } else {
        None
    };
    database.execute_batch("VACUUM").context("cannot compact the c1z database")?;
    database.close().map_err(|(_, error)| error).context("cannot close the c1z database")?;
    compress(&database_path, output, directory)?;
    Ok(C1zWritten { sync_id, previous_sync_id })
}

/// The snapshot's run, in the forms the c1z needs.
struct SnapshotRun {
    connector: String,
    connector_version: String,
    started_at: String,
    ended_at: String,
    /// When the rows were read: the sync's start, so that it does not change between exports.
    discovered_at: String,
}

impl SnapshotRun {
    fn read(source: &Connection) -> anyhow::Result<Self> {
        let (connector, connector_version, started, finished): (String, String, String, String) = source.query_row(
            "SELECT connector, connector_version, started_at, finished_at FROM sync_runs WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )?;
        let started_at = sqlite_time(&started)?;
        Ok(Self {
            connector,
            connector_version,
            discovered_at: started_at.clone(),
            started_at,
            ended_at: sqlite_time(&finished)?,
        })
    }

    /// 32 hex digits, the same for the same run and rows, different for any other sync.
    fn sync_id(&self, content_digest: &[u8]) -> String {
        let mut hasher = Sha256::new();
        for part in [&self.connector, &self.connector_version, &self.started_at, &self.ended_at] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hasher.update(content_digest);
        hasher.finalize()[..16].iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

/// Copies every resource type, resource, entitlement and grant, sorted by id, with an empty
/// sync id (set once the digest, which it returns, is known).
fn copy_objects(source: &Connection, target: &Transaction<'_>, discovered_at: &str) -> anyhow::Result<Vec<u8>> {
    let mut digest = Sha256::new();
    let mut record = |table: &str, data: &[u8]| {
        digest.update(table.as_bytes());
        digest.update((data.len() as u64).to_le_bytes());
        digest.update(data);
    };

    let type_rows =
        query_rows(source, "SELECT id, display_name, listed_under FROM resource_types ORDER BY id", |row| {
            Ok(ResourceTypeRow { id: row.get(0)?, display_name: row.get(1)?, listed_under: row.get(2)? })
        })?;
    // A type's children: those listed under it, and those whose resources have it as parent
    // (subscriptions are listed on their own, yet each is under its tenant).
    let mut child_types: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (parent, child) in query_rows(
        source,
        "SELECT DISTINCT parent_type, resource_type FROM resources WHERE parent_type IS NOT NULL",
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
    )? {
        child_types.entry(parent).or_default().insert(child);
    }
    let mut resource_types = BTreeMap::new();
    {
        let mut insert = target.prepare(
            "INSERT INTO v1_resource_types (external_id, data, sync_id, discovered_at) VALUES (?1, ?2, '', ?3)",
        )?;
        for row in &type_rows {
            if let Some(parent) = &row.listed_under {
                child_types.entry(parent.clone()).or_default().insert(row.id.clone());
            }
            let message = resource_type_message(row);
            let data = message.encode_to_vec();
            record("v1_resource_types", &data);
            insert.execute(params![row.id, data, discovered_at])?;
            resource_types.insert(row.id.clone(), message);
        }
    }

    {
        let mut insert = target.prepare(
            "INSERT INTO v1_resources (resource_type_id, external_id, parent_resource_type_id, parent_resource_id, data, sync_id, discovered_at)
             VALUES (?1, ?2, ?3, ?4, ?5, '', ?6)",
        )?;
        let mut select = source.prepare(
            "SELECT resource_type, id, display_name, parent_type, parent_id, profile FROM resources ORDER BY resource_type, id",
        )?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let parent = match (row.get::<_, Option<String>>(3)?, row.get::<_, Option<String>>(4)?) {
                (Some(resource_type), Some(resource)) => Some(ResourceId { resource_type, resource }),
                _ => None,
            };
            let resource = ResourceRow {
                resource_type: row.get(0)?,
                id: row.get(1)?,
                display_name: row.get(2)?,
                parent,
                profile: row.get(5)?,
            };
            let children = child_types.get(&resource.resource_type).into_iter().flatten();
            let data = resource_message(&resource, children).encode_to_vec();
            record("v1_resources", &data);
            insert.execute(params![
                resource.resource_type,
                format!("{}:{}", resource.resource_type, resource.id),
                resource.parent.as_ref().map(|parent| &parent.resource_type),
                resource.parent.as_ref().map(|parent| &parent.resource),
                data,
                discovered_at,
            ])?;
        }
    }

    {
        let mut insert = target.prepare(
            "INSERT INTO v1_entitlements (resource_type_id, resource_id, external_id, data, sync_id, discovered_at)
             VALUES (?1, ?2, ?3, ?4, '', ?5)",
        )?;
        let mut select = source.prepare(
            "SELECT id, resource_type, resource_id, slug, display_name, description, purpose, grantable_to
             FROM entitlements ORDER BY id",
        )?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let entitlement = EntitlementRow {
                id: row.get(0)?,
                resource_type: row.get(1)?,
                resource_id: row.get(2)?,
                slug: row.get(3)?,
                display_name: row.get(4)?,
                description: row.get(5)?,
                purpose: row.get(6)?,
                grantable_to: row.get(7)?,
            };
            let data = entitlement_message(&entitlement, &resource_types).encode_to_vec();
            record("v1_entitlements", &data);
            insert.execute(params![
                entitlement.resource_type,
                entitlement.resource_id,
                entitlement.id,
                data,
                discovered_at
            ])?;
        }
    }

    {
        let mut insert = target.prepare(
            "INSERT INTO v1_grants (resource_type_id, resource_id, entitlement_id, principal_resource_type_id,
                 principal_resource_id, external_id, expansion, needs_expansion, data, sync_id, discovered_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, '', ?10)",
        )?;
        let mut select = source.prepare(
            "SELECT g.id, g.entitlement_id, g.principal_type, g.principal_id, e.resource_type, e.resource_id, e.slug
             FROM grants g LEFT JOIN entitlements e ON e.id = g.entitlement_id ORDER BY g.id",
        )?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let entitlement_id: String = row.get(1)?;
            let (Some(resource_type), Some(resource), Some(slug)) =
                (row.get::<_, Option<String>>(4)?, row.get::<_, Option<String>>(5)?, row.get::<_, Option<String>>(6)?)
            else {
                anyhow::bail!(
                    "grant {id} is of entitlement {entitlement_id}, which the snapshot does not hold: sync again to get a consistent snapshot"
                );
            };
            let grant = GrantRow {
                id,
                entitlement_id,
                entitlement_resource: ResourceId { resource_type, resource },
                entitlement_slug: slug,
                principal: ResourceId { resource_type: row.get(2)?, resource: row.get(3)? },
            };
            let (message, expandable) = grant_message(&grant);
            let data = message.encode_to_vec();
            record("v1_grants", &data);
            insert.execute(params![
                grant.entitlement_resource.resource_type,
                grant.entitlement_resource.resource,
                grant.entitlement_id,
                grant.principal.resource_type,
                grant.principal.resource,
                grant.id,
                expandable.as_ref().map(|expandable| expandable.encode_to_vec()),
                expandable.is_some(),
                data,
                discovered_at,
            ])?;
        }
    }
    Ok(digest.finalize().to_vec())
}

fn query_rows<T>(
    connection: &Connection,
    query: &str,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> anyhow::Result<Vec<T>> {
    let mut statement = connection.prepare(query)?;
    let rows = statement.query_map([], map)?.collect::<rusqlite::Result<Vec<T>>>()?;
    Ok(rows)
}

/// Keeps the latest full sync of the c1z at `previous` (one that ended before this one) as an
/// older run of the new file. A file that cannot be read this way loses only the history: the
/// new sync is written all the same, and the warning says why.
fn carry_over_previous(
    target: &mut Connection,
    previous: &Path,
    work: &Path,
    sync_id: &str,
    ended_at: &str,
) -> Option<String> {
    let result = (|| -> anyhow::Result<Option<String>> {
        let previous_database = work.join("previous.sqlite");
        reader::decompress(previous, &previous_database)?;
        target.execute("ATTACH DATABASE ?1 AS previous", [previous_database.to_string_lossy()])?;
        let carried = copy_previous_sync(target, sync_id, ended_at);
        target.execute("DETACH DATABASE previous", [])?;
        carried
    })();
    match result {
        Ok(carried) => carried,
        Err(error) => {
            tracing::warn!(
                file = %previous.display(),
                error = format!("{error:#}"),
                "the c1z at the output is not one this version can keep as the previous sync; writing the new sync alone (baton diff needs two syncs in one file)"
            );
            None
        }
    }
}

/// Copies the previous file's latest full sync in one transaction: all of it, or nothing.
fn copy_previous_sync(target: &mut Connection, sync_id: &str, ended_at: &str) -> anyhow::Result<Option<String>> {
    let latest: Option<(String, String)> = target
        .query_row(
            "SELECT sync_id, ended_at FROM previous.v1_sync_runs WHERE ended_at IS NOT NULL AND sync_type = 'full'
             ORDER BY ended_at DESC, sync_id DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let Some((previous_id, previous_ended_at)) = latest else { return Ok(None) };
    if previous_id == sync_id {
        return Ok(None);
    }
    if previous_ended_at.as_str() >= ended_at {
        tracing::warn!(
            previous_sync = %previous_id,
            previous_ended_at = %previous_ended_at,
            ended_at,
            "the c1z at the output holds a sync that did not end before this one (readers order syncs by their end, to the second): it is not kept, and baton diff will see one sync"
        );
        return Ok(None);
    }
    let copy = target.transaction()?;
    copy.execute(
        "INSERT INTO v1_sync_runs (sync_id, started_at, ended_at, sync_token, sync_type, supports_diff, grants_backfilled)
         SELECT sync_id, started_at, ended_at, '', 'full', 1, 1 FROM previous.v1_sync_runs WHERE sync_id = ?1",
        [&previous_id],
    )?;
    for table in OBJECT_TABLES {
        let columns = copy
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}') WHERE name != 'id' ORDER BY cid"))?
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .join(", ");
        copy
            .execute(
                &format!("INSERT INTO main.{table} ({columns}) SELECT {columns} FROM previous.{table} WHERE sync_id = ?1 ORDER BY id"),
                [&previous_id],
            )
            .with_context(|| format!("cannot copy {table} of the previous sync"))?;
    }
    copy.commit()?;
    Ok(Some(previous_id))
}

/// `C1ZF\0`, then one zstd frame of the database that records its size (as baton-sdk writes
/// it), into a temporary file beside `output` that replaces it once complete.
fn compress(database: &Path, output: &Path, directory: &Path) -> anyhow::Result<()> {
    let cannot_write =
        || format!("cannot write {}: check that its directory is writable and has space", output.display());
    let mut input = File::open(database).context("cannot read back the c1z database")?;
    let size = input.metadata()?.len();
    let mut temporary = tempfile::Builder::new().prefix(".c1z-").tempfile_in(directory).with_context(cannot_write)?;
    {
        let mut out = BufWriter::new(temporary.as_file_mut());
        out.write_all(FILE_HEADER).with_context(cannot_write)?;
        let mut encoder = zstd::stream::Encoder::new(out, ZSTD_LEVEL)?;
        encoder.include_checksum(true)?;
        encoder.include_contentsize(true)?;
        encoder.set_pledged_src_size(Some(size))?;
        std::io::copy(&mut input, &mut encoder).with_context(cannot_write)?;
        encoder.finish().with_context(cannot_write)?.flush().with_context(cannot_write)?;
    }
    temporary.as_file().sync_all().with_context(cannot_write)?;
    temporary.persist(output).map_err(|error| error.error).with_context(cannot_write)?;
    Ok(())
}
