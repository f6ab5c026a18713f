//! Typing the holders of a grant. Graph and ARM name a holder's kind in different ways
//! (`@odata.type`, `principalType`); a service principal is an `enterprise_application` or a
//! `managed_identity` only by its `servicePrincipalType`, which is looked up when the listing
//! does not carry it (never assumed). Holders that are not principals (devices, contacts,
//! Legacy/SocialIdp service principals, foreign groups) become `unsupported-principal` notices.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::contract::{ConnectorError, Grant, GrantPage, Notice, Resource, ResourceRef};
use crate::graph::{Graph, segment};
use crate::ids::{EntitlementId, PrincipalType, ResourceType, Slug, grant_id};
use crate::notices::unsupported_principal;
use crate::paging::{Phase, following};

/// A directory object as collections of members, owners and expanded principals give it (and
/// as a group's profile carries its owners, in the same shape).
#[derive(Serialize, Deserialize, Clone)]
pub struct DirectoryObject {
    pub id: String,
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    #[serde(rename = "servicePrincipalType", default, skip_serializing_if = "Option::is_none")]
    pub service_principal_type: Option<String>,
}

/// What a holder turned out to be.
pub enum Holder {
    Principal(PrincipalType, String),
    /// Not a principal type: the id and a description of its kind.
    Unsupported {
        id: String,
        kind: String,
    },
}

/// Types holders, looking service principals and untyped objects up at most once per call.
pub struct PrincipalResolver<'g> {
    graph: &'g Graph,
    looked_up: HashMap<String, Option<DirectoryObject>>,
}

impl<'g> PrincipalResolver<'g> {
    pub fn new(graph: &'g Graph) -> Self {
        Self { graph, looked_up: HashMap::new() }
    }

    /// A member, owner or expanded principal, typed by its `@odata.type`.
    pub fn directory_object(&mut self, object: &DirectoryObject) -> Result<Holder, ConnectorError> {
        let Some(odata_type) = object.odata_type.as_deref() else {
            // Older Graph answers omit @odata.type: ask the directory what the object is.
            return match self.look_up(&object.id, LookUp::DirectoryObject)? {
                Some(found) if found.odata_type.is_some() => self.directory_object(&found),
                _ => Ok(Holder::Unsupported {
                    id: object.id.clone(),
                    kind: "directory object of unknown type".to_owned(),
                }),
            };
        };
        let kind = odata_type.trim_start_matches('#');
        Ok(match kind {
            "microsoft.graph.user" => Holder::Principal(PrincipalType::User, object.id.clone()),
            "microsoft.graph.group" => Holder::Principal(PrincipalType::Group, object.id.clone()),
            "microsoft.graph.servicePrincipal" => {
                self.service_principal(&object.id, object.service_principal_type.as_deref())?
            }
            other => Holder::Unsupported { id: object.id.clone(), kind: other.to_owned() },
        })
    }

    /// A holder typed by a `principalType` (Graph app role assignments: User, Group,
    /// ServicePrincipal; ARM role assignments add ForeignGroup and Device).
    pub fn by_principal_type(
        &mut self,
        principal_id: &str,
        principal_type: Option<&str>,
    ) -> Result<Holder, ConnectorError> {
        Ok(match principal_type {
            Some("User") => Holder::Principal(PrincipalType::User, principal_id.to_owned()),
            Some("Group") => Holder::Principal(PrincipalType::Group, principal_id.to_owned()),
            Some("ServicePrincipal") => self.service_principal(principal_id, None)?,
            Some(other) => Holder::Unsupported { id: principal_id.to_owned(), kind: other.to_owned() },
            None => {
                Holder::Unsupported { id: principal_id.to_owned(), kind: "principal without principalType".to_owned() }
            }
        })
    }

    fn service_principal(&mut self, id: &str, known_type: Option<&str>) -> Result<Holder, ConnectorError> {
        let service_principal_type = match known_type {
            Some(known) => Some(known.to_owned()),
            None => self.look_up(id, LookUp::ServicePrincipal)?.and_then(|found| found.service_principal_type),
        };
        Ok(match service_principal_type.as_deref() {
            Some("Application") => Holder::Principal(PrincipalType::EnterpriseApplication, id.to_owned()),
            Some("ManagedIdentity") => Holder::Principal(PrincipalType::ManagedIdentity, id.to_owned()),
            Some(other) => Holder::Unsupported { id: id.to_owned(), kind: format!("servicePrincipal ({other})") },
            None => Holder::Unsupported {
                id: id.to_owned(),
                kind: "servicePrincipal (type unknown: not found in the directory)".to_owned(),
            },
        })
    }

    /// `GET /v1.0/{servicePrincipals|directoryObjects}/{id}`; a 404 (deleted object) is "not found", not an error.
    fn look_up(&mut self, id: &str, collection: LookUp) -> Result<Option<DirectoryObject>, ConnectorError> {
        if let Some(known) = self.looked_up.get(id) {
            return Ok(known.clone());
        }
        let path = format!("/{}/{}", collection.path(), segment(id));
        let url = match collection {
            // Only a service principal has the property; a directoryObject read returns the
            // object's own properties, @odata.type included.
            LookUp::ServicePrincipal => self.graph.url(&path, &[("$select", "id,servicePrincipalType")]),
            LookUp::DirectoryObject => self.graph.url(&path, &[]),
        };
        let found = match self.graph.object::<DirectoryObject>(url, collection.permission()) {
            Ok(object) => Some(object),
            Err(ConnectorError::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        self.looked_up.insert(id.to_owned(), found.clone());
        Ok(found)
    }
}

/// `$expand` of the owners of listed groups and applications: one request per 100 of them
/// instead of one each. Graph cuts an expanded relationship at 20 objects without saying so.
pub const EXPAND_OWNERS: &str = "owners($select=id,servicePrincipalType)";
const EXPANDED_LIMIT: usize = 20;

/// Puts the expanded owners of a listed object into its profile (`owners`) when they are
/// certainly all of them: fewer than Graph's expansion limit and than the configured page size
/// (a small page size is honoured for owners too), each typed. Otherwise the profile carries
/// none, and the owners are paged.
pub fn carry_complete_owners(profile: &mut Value, owners: Option<Vec<DirectoryObject>>, page_size: u16) {
    let complete = owners.filter(|owners| {
        owners.len() < EXPANDED_LIMIT.min(usize::from(page_size))
            && owners.iter().all(|owner| owner.odata_type.is_some())
    });
    if let Some(owners) = complete {
        profile["owners"] = json!(owners);
    }
}

/// The first page of a directory-object relation at `path` (a group's members, an object's
/// owners), with the properties that type each holder.
pub fn holders_url(graph: &Graph, path: &str) -> String {
    graph.url(path, &[("$select", "id,servicePrincipalType"), ("$top", graph.page_size())])
}

#[derive(Deserialize)]
struct OwnersProfile {
    owners: Option<Vec<DirectoryObject>>,
}

/// The owners a resource's profile carries (`owners`), complete, if it carries them; an
/// unreadable profile counts as carrying none.
pub fn listed_owners(resource: &Resource) -> Option<Vec<DirectoryObject>> {
    serde_json::from_str::<OwnersProfile>(&resource.profile_json).ok()?.owners
}

/// Ends a page of the grants of `resource` (of type `resource_type`), whose phases are `phases`
/// (owners last). When the phase before owners has just read its last page and the listed
/// resource carried its complete owners, they are added here and the owners listing is skipped.
pub fn finish_grant_page(
    mut sink: GrantSink,
    resolver: &mut PrincipalResolver<'_>,
    resource_type: ResourceType,
    resource: &Resource,
    phases: &[Phase],
    phase: Phase,
    next_link: Option<String>,
) -> Result<GrantPage, ConnectorError> {
    if phases.first() == Some(&phase)
        && next_link.is_none()
        && let Some(owners) = listed_owners(resource)
    {
        let owners_entitlement_id = EntitlementId::new(resource_type, &resource.id, Slug::Owners).render();
        for owner in &owners {
            sink.add(&owners_entitlement_id, resolver.directory_object(owner)?);
        }
        return Ok(GrantPage { items: sink.items, next_page_token: None, notices: sink.notices });
    }
    Ok(GrantPage { items: sink.items, next_page_token: following(phases, phase, next_link), notices: sink.notices })
}

/// Collects the grants (and notices) of one page.
#[derive(Default)]
pub struct GrantSink {
    pub items: Vec<Grant>,
    pub notices: Vec<Notice>,
    /// A principal may hold the same thing twice (e.g. a directory role at two scopes): one grant.
    seen: HashSet<String>,
}

impl GrantSink {
    pub fn add(&mut self, entitlement_id: &str, holder: Holder) {
        match holder {
            Holder::Principal(principal_type, principal_id) => {
                let id = grant_id(entitlement_id, principal_type, &principal_id);
                if self.seen.insert(id.clone()) {
                    self.items.push(Grant {
                        id,
                        entitlement_id: entitlement_id.to_owned(),
                        principal: ResourceRef { resource_type: principal_type.as_str().to_owned(), id: principal_id },
                    });
                }
            }
            Holder::Unsupported { id, kind } => self.notices.push(unsupported_principal(
                format!("{kind} {id} in {entitlement_id}"),
                format!(
                    "{id} ({kind}) holds {entitlement_id} but is not a user, group, enterprise \
                     application or managed identity: it is not reported as a grant"
                ),
            )),
        }
    }
}

#[derive(Clone, Copy)]
enum LookUp {
    ServicePrincipal,
    DirectoryObject,
}

impl LookUp {
    fn path(self) -> &'static str {
        match self {
            LookUp::ServicePrincipal => "servicePrincipals",
            LookUp::DirectoryObject => "directoryObjects",
        }
    }

    fn permission(self) -> &'static str {
        match self {
            LookUp::ServicePrincipal => "Application.Read.All",
            LookUp::DirectoryObject => "Directory.Read.All",
        }
    }
}

/// One page of a directory-object collection (members, owners) as grants of `entitlement_id`.
/// Returns Azure's nextLink. A 403 becomes a gap notice (the rest of the resource's grants
/// still come through) and ends this listing.
pub fn holders_page(
    graph: &Graph,
    resolver: &mut PrincipalResolver<'_>,
    url: String,
    entitlement_id: &str,
    permission: &str,
    sink: &mut GrantSink,
) -> Result<Option<String>, ConnectorError> {
    let call = crate::http::call_label(crate::http::Verb::Get, &url);
    match graph.collection::<DirectoryObject>(url, false, permission) {
        Ok(page) => {
            for object in &page.value {
                let holder = resolver.directory_object(object)?;
                sink.add(entitlement_id, holder);
            }
            Ok(page.next_link)
        }
        Err(error) => {
            sink.notices.push(crate::notices::gap_if_forbidden(error, call)?);
            Ok(None)
        }
    }
}
