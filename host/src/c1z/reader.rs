//! Reads a c1z back the way baton does: check the header, decompress the database, pick a
//! sync, decode every row's message. Every row is checked against the columns readers filter
//! on (a row whose columns disagree with its message is listed wrongly by baton), so reading a
//! file is also checking it.

use std::fs::File;
use std::io::{BufReader, Read as _};
use std::path::Path;

use anyhow::Context as _;
use prost::Message;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _};

use super::FILE_HEADER;
use super::proto::{Annotation as _, Entitlement, Grant, GrantExpandable, Resource, ResourceId, ResourceType};

/// Decompresses the database of the c1z at `path` into `database`.
pub fn decompress(path: &Path, database: &Path) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut input = BufReader::new(file);
    let mut header = [0u8; FILE_HEADER.len()];
    input.read_exact(&mut header).with_context(|| format!("{} is too short to be a c1z", path.display()))?;
    if header != *FILE_HEADER {
        anyhow::bail!("{} is not a c1z file (it does not start with C1ZF\\0)", path.display());
    }
    let mut decoder = zstd::stream::Decoder::new(input)?;
    let mut out = File::create(database).with_context(|| format!("cannot create {}", database.display()))?;
    std::io::copy(&mut decoder, &mut out).with_context(|| format!("{} is not a valid zstd stream", path.display()))?;
    Ok(())
}

/// One row of `v1_sync_runs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRun {
    pub sync_id: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub sync_type: String,
}

/// One row of `v1_grants`: the message, and the expansion readers keep beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredGrant {
    pub grant: Grant,
    pub expansion: Option<GrantExpandable>,
    pub needs_expansion: bool,
}

/// A c1z opened for reading; its database lives in a temporary directory removed on drop.
pub struct C1zReader {
    connection: Connection,
    _work: tempfile::TempDir,
}

impl C1zReader {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let work = tempfile::tempdir().context("cannot create a temporary directory to read the c1z")?;
        let database = work.path().join("sync.sqlite");
        decompress(path, &database)?;
        let connection = Connection::open_with_flags(&database, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("the database inside {} cannot be opened", path.display()))?;
        Ok(Self { connection, _work: work })
    }

    pub fn sync_runs(&self) -> anyhow::Result<Vec<SyncRun>> {
        let mut statement =
            self.connection.prepare("SELECT sync_id, started_at, ended_at, sync_type FROM v1_sync_runs ORDER BY id")?;
        let runs = statement.query_map([], sync_run)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(runs)
    }

    /// The sync `baton` shows: the full sync that ended last.
    pub fn latest_full_sync(&self) -> anyhow::Result<SyncRun> {
        self.connection
            .query_row(
                "SELECT sync_id, started_at, ended_at, sync_type FROM v1_sync_runs
                 WHERE ended_at IS NOT NULL AND sync_type = 'full' ORDER BY ended_at DESC, sync_id DESC LIMIT 1",
                [],
                sync_run,
            )
            .optional()?
            .context("the c1z holds no finished full sync")
    }

    pub fn resource_types(&self, sync_id: &str) -> anyhow::Result<Vec<ResourceType>> {
        self.rows("SELECT external_id, data FROM v1_resource_types WHERE sync_id = ?1 ORDER BY id", sync_id, |row| {
            let external_id: String = row.get(0)?;
            let message = decode::<ResourceType>(row.get_ref(1)?.as_blob()?, "resource type", &external_id)?;
            ensure(message.id == external_id, "resource type", &external_id, "external_id differs from its id")?;
            Ok(message)
        })
    }

    pub fn resources(&self, sync_id: &str) -> anyhow::Result<Vec<Resource>> {
        self.rows(
            "SELECT external_id, resource_type_id, parent_resource_type_id, parent_resource_id, data
             FROM v1_resources WHERE sync_id = ?1 ORDER BY id",
            sync_id,
            |row| {
                let external_id: String = row.get(0)?;
                let message = decode::<Resource>(row.get_ref(4)?.as_blob()?, "resource", &external_id)?;
                let id = message.id.clone().unwrap_or_default();
                ensure(
                    external_id == format!("{}:{}", id.resource_type, id.resource),
                    "resource",
                    &external_id,
                    "external_id is not <resource_type>:<id>",
                )?;
                ensure(
                    row.get::<_, String>(1)? == id.resource_type,
                    "resource",
                    &external_id,
                    "resource_type_id differs",
                )?;
                let parent = match (row.get::<_, Option<String>>(2)?, row.get::<_, Option<String>>(3)?) {
                    (Some(resource_type), Some(resource)) => Some(ResourceId { resource_type, resource }),
                    _ => None,
                };
                ensure(parent == message.parent_resource_id, "resource", &external_id, "parent columns differ")?;
                Ok(message)
            },
        )
    }

    pub fn entitlements(&self, sync_id: &str) -> anyhow::Result<Vec<Entitlement>> {
        self.rows(
            "SELECT external_id, resource_type_id, resource_id, data FROM v1_entitlements WHERE sync_id = ?1 ORDER BY id",
            sync_id,
            |row| {
                let external_id: String = row.get(0)?;
                let message = decode::<Entitlement>(row.get_ref(3)?.as_blob()?, "entitlement", &external_id)?;
                ensure(message.id == external_id, "entitlement", &external_id, "external_id differs from its id")?;
                let resource = message.resource.as_ref().and_then(|resource| resource.id.clone()).unwrap_or_default();
                ensure(
                    (row.get::<_, String>(1)?, row.get::<_, String>(2)?) == (resource.resource_type, resource.resource),
                    "entitlement",
                    &external_id,
                    "resource columns differ from its resource",
                )?;
                Ok(message)
            },
        )
    }

    pub fn grants(&self, sync_id: &str) -> anyhow::Result<Vec<StoredGrant>> {
        self.rows(
            "SELECT external_id, resource_type_id, resource_id, entitlement_id, principal_resource_type_id,
                    principal_resource_id, expansion, needs_expansion, data
             FROM v1_grants WHERE sync_id = ?1 ORDER BY id",
            sync_id,
            |row| {
                let external_id: String = row.get(0)?;
                let grant = decode::<Grant>(row.get_ref(8)?.as_blob()?, "grant", &external_id)?;
                ensure(grant.id == external_id, "grant", &external_id, "external_id differs from its id")?;
                let entitlement = grant.entitlement.clone().unwrap_or_default();
                let resource = entitlement.resource.and_then(|resource| resource.id).unwrap_or_default();
                let principal = grant.principal.as_ref().and_then(|principal| principal.id.clone()).unwrap_or_default();
                let columns: [String; 5] = [row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?];
                ensure(
                    columns
                        == [
                            resource.resource_type,
                            resource.resource,
                            entitlement.id,
                            principal.resource_type,
                            principal.resource,
                        ],
                    "grant",
                    &external_id,
                    "its columns differ from its entitlement and principal",
                )?;
                let expansion = row
                    .get::<_, Option<Vec<u8>>>(6)?
                    .map(|bytes| decode::<GrantExpandable>(&bytes, "grant expansion", &external_id))
                    .transpose()?;
                let annotated = GrantExpandable::find_in(&grant.annotations).with_context(|| {
                    format!("grant {external_id}: its GrantExpandable annotation cannot be decoded")
                })?;
                ensure(
                    expansion == annotated,
                    "grant",
                    &external_id,
                    "the expansion column differs from its annotation",
                )?;
                Ok(StoredGrant { grant, expansion, needs_expansion: row.get(7)? })
            },
        )
    }

    fn rows<T>(
        &self,
        query: &str,
        sync_id: &str,
        mut read: impl FnMut(&rusqlite::Row<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        let mut statement = self.connection.prepare(query)?;
        let mut rows = statement.query([sync_id])?;
        let mut items = Vec::new();
        while let Some(row) = rows.next()? {
            items.push(read(row)?);
        }
        Ok(items)
    }
}

/// A `v1_sync_runs` row selected as `sync_id, started_at, ended_at, sync_type`.
fn sync_run(row: &rusqlite::Row<'_>) -> rusqlite::Result<SyncRun> {
    Ok(SyncRun { sync_id: row.get(0)?, started_at: row.get(1)?, ended_at: row.get(2)?, sync_type: row.get(3)? })
}

fn decode<M: Message + Default>(bytes: &[u8], kind: &str, id: &str) -> anyhow::Result<M> {
    M::decode(bytes).with_context(|| format!("the {kind} row {id} does not hold a valid protobuf message"))
}

fn ensure(condition: bool, kind: &str, id: &str, problem: &str) -> anyhow::Result<()> {
    if condition { Ok(()) } else { anyhow::bail!("the {kind} row {id} is inconsistent: {problem}") }
}
