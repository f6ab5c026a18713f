//! Delta queries (`/users/delta`, `/groups/delta`, `/servicePrincipals/delta`) like Graph's:
//! pages linked by `@odata.nextLink`, the last one carrying an `@odata.deltaLink` whose opaque
//! `$deltatoken` returns the changes since it was issued.
//!
//! The fake keeps no change log inside the model: a delta token remembers what the collection
//! looked like when it was issued (a hash of each object's selected properties, and each
//! group's members and owners), and a later request diffs the tenant against it. So every
//! change shows up, whether it came through a write route or [`crate::FakeAzure::mutate`].
//! Like Graph: deleted objects and removed members come with `@removed`; a group whose only
//! change is its membership comes with `id` and `members@delta`/`owners@delta` alone; an
//! unknown or forgotten token answers 410 `syncStateNotFound`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::entities::{GraphEntity, to_json};
use super::error::GraphError;
use super::{GraphCall, GraphReply};
use crate::directory::Directory;
use crate::ids::random_guid;
use crate::server::lock;

/// Objects per delta page (Graph's default is similar; clients must follow nextLinks).
const PAGE_SIZE: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaCollection {
    Users,
    Groups,
    ServicePrincipals,
}

impl DeltaCollection {
    fn path(self) -> &'static str {
        match self {
            DeltaCollection::Users => "users",
            DeltaCollection::Groups => "groups",
            DeltaCollection::ServicePrincipals => "servicePrincipals",
        }
    }
}

/// What one object looked like when a token was issued.
#[derive(Clone, PartialEq, Eq)]
struct Seen {
    properties: u64,
    members: BTreeSet<String>,
    owners: BTreeSet<String>,
}

struct IssuedToken {
    collection: DeltaCollection,
    objects: BTreeMap<String, Seen>,
}

/// Pages of a round of changes not yet read, and the delta link that ends it.
struct PendingPages {
    remaining: Vec<Value>,
    delta_link: String,
}

/// The delta tokens and pending pages the fake has issued.
#[derive(Default)]
pub struct DeltaStore {
    tokens: std::sync::Mutex<HashMap<String, IssuedToken>>,
    pages: std::sync::Mutex<HashMap<String, PendingPages>>,
}

impl DeltaStore {
    /// Forgets every token, as Graph does after a while: the next delta request answers 410.
    pub fn expire_all(&self) {
        lock(&self.tokens).clear();
        lock(&self.pages).clear();
    }
}

pub fn serve(call: &GraphCall, collection: DeltaCollection) -> Result<GraphReply, GraphError> {
    let query = &call.request.query;
    let store = &call.shared.delta;
    let base =
        format!("{}/{}/{}/delta", call.request.public_base(&call.shared.graph_url), call.version, collection.path());
    if let Some(skip) = query.get("$skiptoken") {
        let mut pages = lock(&store.pages);
        let pending =
            pages.remove(skip).ok_or_else(|| GraphError::bad_request(format!("Invalid skip token '{skip}'.")))?;
        return Ok(respond(call, &base, pending.remaining, pending.delta_link, &mut pages));
    }
    let select = selection(query.get("$select"));
    let directory = lock(&call.shared.directory);
    let now = observe(&directory, collection, &select);
    let delta_token = query.get("$deltatoken");
    let changes = match delta_token {
        Some(token) if token.eq_ignore_ascii_case("latest") => Vec::new(),
        Some(token) => {
            let tokens = lock(&store.tokens);
            let issued = tokens.get(token).filter(|issued| issued.collection == collection).ok_or_else(|| {
                GraphError::new(
                    StatusCode::GONE,
                    "syncStateNotFound",
                    "The delta token is no longer valid or was not issued for this query. Restart the sync without it.",
                )
            })?;
            diff(&directory, collection, &select, &issued.objects, &now)
        }
        None => diff(&directory, collection, &select, &BTreeMap::new(), &now),
    };
    drop(directory);
    let token = random_guid();
    lock(&store.tokens).insert(token.clone(), IssuedToken { collection, objects: now });
    let select_query = query.get("$select").map(|select| format!("$select={}&", encode(select))).unwrap_or_default();
    let delta_link = format!("{base}?{select_query}$deltatoken={token}");
    let mut pages = lock(&store.pages);
    Ok(respond(call, &base, changes, delta_link, &mut pages))
}

fn respond(
    call: &GraphCall,
    base: &str,
    mut changes: Vec<Value>,
    delta_link: String,
    pages: &mut HashMap<String, PendingPages>,
) -> GraphReply {
    let rest = if changes.len() > PAGE_SIZE { changes.split_off(PAGE_SIZE) } else { Vec::new() };
    let mut body = Map::new();
    body.insert("@odata.context".into(), Value::from(format!("{}#directoryObjects", call.metadata_url())));
    if rest.is_empty() {
        body.insert("@odata.deltaLink".into(), Value::from(delta_link));
    } else {
        let skip = random_guid();
        body.insert("@odata.nextLink".into(), Value::from(format!("{base}?$skiptoken={skip}")));
        pages.insert(skip, PendingPages { remaining: rest, delta_link });
    }
    body.insert("value".into(), Value::Array(changes));
    GraphReply::ok(Value::Object(body))
}

/// `$select` without the navigation properties (`members`, `owners`), which delta reports as
/// `members@delta`/`owners@delta` instead.
fn selection(raw: Option<&str>) -> Option<Vec<String>> {
    raw.map(|raw| {
        raw.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .filter(|name| !name.eq_ignore_ascii_case("members") && !name.eq_ignore_ascii_case("owners"))
            .map(str::to_owned)
            .collect()
    })
}

fn entities(directory: &Directory, collection: DeltaCollection) -> Vec<(&str, &dyn GraphEntity)> {
    let tenant = &directory.tenant;
    match collection {
        DeltaCollection::Users => {
            tenant.users.iter().map(|user| (user.id.as_str(), user as &dyn GraphEntity)).collect()
        }
        DeltaCollection::Groups => {
            tenant.groups.iter().map(|group| (group.id.as_str(), group as &dyn GraphEntity)).collect()
        }
        DeltaCollection::ServicePrincipals => {
            tenant.service_principals.iter().map(|sp| (sp.id.as_str(), sp as &dyn GraphEntity)).collect()
        }
    }
}

fn observe(directory: &Directory, collection: DeltaCollection, select: &Option<Vec<String>>) -> BTreeMap<String, Seen> {
    entities(directory, collection)
        .into_iter()
        .map(|(id, entity)| {
            let properties = Value::Object(to_json(entity, select.as_deref(), false)).to_string();
            let (members, owners) = links(directory, collection, id);
            (id.to_owned(), Seen { properties: crate::ids::fnv1a(properties.as_bytes()), members, owners })
        })
        .collect()
}

fn links(directory: &Directory, collection: DeltaCollection, id: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    match (collection, directory.group_index(id)) {
        (DeltaCollection::Groups, Some(index)) => {
            let group = &directory.tenant.groups[index];
            (group.members.iter().cloned().collect(), group.owners.iter().cloned().collect())
        }
        _ => (BTreeSet::new(), BTreeSet::new()),
    }
}

/// The delta entries that take a client from `before` to `now`.
fn diff(
    directory: &Directory,
    collection: DeltaCollection,
    select: &Option<Vec<String>>,
    before: &BTreeMap<String, Seen>,
    now: &BTreeMap<String, Seen>,
) -> Vec<Value> {
    let mut entries = Vec::new();
    for (id, entity) in entities(directory, collection) {
        let Some(current) = now.get(id) else { continue };
        let previous = before.get(id);
        if previous == Some(current) {
            continue;
        }
        let empty = BTreeSet::new();
        let properties_changed = previous.is_none_or(|previous| previous.properties != current.properties);
        let mut entry = if properties_changed {
            to_json(entity, select.as_deref(), false)
        } else {
            let mut only_id = Map::new();
            only_id.insert("id".into(), Value::from(id));
            only_id
        };
        if collection == DeltaCollection::Groups {
            for (name, was, is) in [
                ("members@delta", previous.map_or(&empty, |p| &p.members), &current.members),
                ("owners@delta", previous.map_or(&empty, |p| &p.owners), &current.owners),
            ] {
                let changes = link_changes(directory, was, is);
                if !changes.is_empty() {
                    entry.insert(name.into(), Value::Array(changes));
                }
            }
        }
        entries.push(Value::Object(entry));
    }
    for id in before.keys().filter(|id| !now.contains_key(*id)) {
        entries.push(json!({ "id": id, "@removed": { "reason": "deleted" } }));
    }
    entries
}

fn link_changes(directory: &Directory, was: &BTreeSet<String>, is: &BTreeSet<String>) -> Vec<Value> {
    let odata_type = |id: &str| {
        directory
            .object(id)
            .map_or("#microsoft.graph.directoryObject", |object| object.entity().entity_type().odata_type)
    };
    let added = is.difference(was).map(|id| json!({ "@odata.type": odata_type(id), "id": id }));
    let removed = was
        .difference(is)
        .map(|id| json!({ "@odata.type": odata_type(id), "id": id, "@removed": { "reason": "deleted" } }));
    added.chain(removed).collect()
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
