//! The served tenant plus the id index that keeps lookups constant-time on 100k-user tenants.

use std::collections::HashMap;

use crate::arm::index::RbacIndex;
use crate::model::{Group, ServicePrincipal, StubKind, Tenant, User};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    User,
    Group,
    ServicePrincipal,
    Device,
    OrgContact,
}

impl ObjectKind {
    /// The `principalType` Graph and ARM use for assignments; `None` for objects that cannot be principals.
    pub fn principal_type(self) -> Option<&'static str> {
        match self {
            ObjectKind::User => Some("User"),
            ObjectKind::Group => Some("Group"),
            ObjectKind::ServicePrincipal => Some("ServicePrincipal"),
            ObjectKind::Device | ObjectKind::OrgContact => None,
        }
    }
}

/// Where a directory object lives in the tenant's vectors.
#[derive(Clone, Copy, Debug)]
struct ObjectLocation {
    kind: ObjectKind,
    index: usize,
}

/// A resolved directory object.
#[derive(Clone, Copy)]
pub enum DirectoryObject<'a> {
    User(&'a User),
    Group(&'a Group),
    ServicePrincipal(&'a ServicePrincipal),
    Stub(&'a crate::model::DirectoryObjectStub),
}

impl DirectoryObject<'_> {
    /// The id as stored (requests may spell it in another case).
    pub fn entity_id(&self) -> &str {
        match self {
            DirectoryObject::User(user) => &user.id,
            DirectoryObject::Group(group) => &group.id,
            DirectoryObject::ServicePrincipal(sp) => &sp.id,
            DirectoryObject::Stub(stub) => &stub.id,
        }
    }

    pub fn display_name(&self) -> &str {
        match self {
            DirectoryObject::User(user) => &user.display_name,
            DirectoryObject::Group(group) => &group.display_name,
            DirectoryObject::ServicePrincipal(sp) => &sp.display_name,
            DirectoryObject::Stub(stub) => &stub.display_name,
        }
    }
}

pub struct Directory {
    pub tenant: Tenant,
    by_id: HashMap<String, ObjectLocation>,
    users_by_upn: HashMap<String, usize>,
    pub rbac: RbacIndex,
}

impl Directory {
    pub fn new(tenant: Tenant) -> Self {
        let mut directory =
            Directory { tenant, by_id: HashMap::new(), users_by_upn: HashMap::new(), rbac: RbacIndex::default() };
        directory.reindex();
        directory
    }

    /// Rebuilds the indexes; needed after any change that adds or removes directory objects.
    pub fn reindex(&mut self) {
        let tenant = &self.tenant;
        let mut by_id = HashMap::with_capacity(
            tenant.users.len() + tenant.groups.len() + tenant.service_principals.len() + tenant.other_objects.len(),
        );
        let mut insert = |id: &str, kind, index| {
            by_id.insert(id.to_ascii_lowercase(), ObjectLocation { kind, index });
        };
        for (index, user) in tenant.users.iter().enumerate() {
            insert(&user.id, ObjectKind::User, index);
        }
        for (index, group) in tenant.groups.iter().enumerate() {
            insert(&group.id, ObjectKind::Group, index);
        }
        for (index, sp) in tenant.service_principals.iter().enumerate() {
            insert(&sp.id, ObjectKind::ServicePrincipal, index);
        }
        for (index, stub) in tenant.other_objects.iter().enumerate() {
            let kind = match stub.kind {
                StubKind::Device => ObjectKind::Device,
                StubKind::OrgContact => ObjectKind::OrgContact,
            };
            insert(&stub.id, kind, index);
        }
        self.by_id = by_id;
        self.users_by_upn = tenant
            .users
            .iter()
            .enumerate()
            .map(|(index, user)| (user.user_principal_name.to_ascii_lowercase(), index))
            .collect();
        self.reindex_rbac();
    }

    /// Rebuilds the Azure RBAC index; needed after any change to subscriptions, resource
    /// groups or role assignments.
    pub fn reindex_rbac(&mut self) {
        self.rbac = RbacIndex::of(&self.tenant);
    }

    pub fn kind_of(&self, id: &str) -> Option<ObjectKind> {
        self.location(id).map(|location| location.kind)
    }

    fn location(&self, id: &str) -> Option<ObjectLocation> {
        self.by_id.get(&id.to_ascii_lowercase()).copied()
    }

    pub fn object(&self, id: &str) -> Option<DirectoryObject<'_>> {
        let location = self.location(id)?;
        let tenant = &self.tenant;
        Some(match location.kind {
            ObjectKind::User => DirectoryObject::User(&tenant.users[location.index]),
            ObjectKind::Group => DirectoryObject::Group(&tenant.groups[location.index]),
            ObjectKind::ServicePrincipal => {
                DirectoryObject::ServicePrincipal(&tenant.service_principals[location.index])
            }
            ObjectKind::Device | ObjectKind::OrgContact => DirectoryObject::Stub(&tenant.other_objects[location.index]),
        })
    }

    /// Graph addresses users by object id or by user principal name.
    pub fn user(&self, id_or_upn: &str) -> Option<&User> {
        match self.location(id_or_upn) {
            Some(ObjectLocation { kind: ObjectKind::User, index }) => Some(&self.tenant.users[index]),
            Some(_) => None,
            None => self.users_by_upn.get(&id_or_upn.to_ascii_lowercase()).map(|index| &self.tenant.users[*index]),
        }
    }

    pub fn group_index(&self, id: &str) -> Option<usize> {
        match self.location(id) {
            Some(ObjectLocation { kind: ObjectKind::Group, index }) => Some(index),
            _ => None,
        }
    }

    pub fn service_principal_index(&self, id: &str) -> Option<usize> {
        match self.location(id) {
            Some(ObjectLocation { kind: ObjectKind::ServicePrincipal, index }) => Some(index),
            _ => None,
        }
    }
}
