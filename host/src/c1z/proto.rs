//! The protobuf messages of ConductorOne's connector API that a c1z file stores, declared by
//! hand for `prost` (no protoc on CI).
//!
//! They mirror `proto/c1/connector/v2/` of ConductorOne/baton-sdk (Apache License 2.0,
//! Copyright ConductorOne, Inc.): the names, tags and types below are theirs, in files
//! `resource.proto` (ResourceType, ResourceId, Resource, Status), `entitlement.proto`
//! (Entitlement), `grant.proto` (Grant), `annotation_trait.proto` (UserTrait, GroupTrait,
//! RoleTrait, AppTrait), `annotation_grant.proto` (GrantExpandable) and
//! `annotation_resource_tree.proto` (ChildResourceType). Only the fields we write are declared;
//! readers skip the others, and a reader of ours skips unknown fields too.

use prost_types::{Any, Struct};

/// The protobuf package of every message here; `Any` type URLs are built from it.
const PACKAGE: &str = "c1.connector.v2";

/// A message that can be packed into a `google.protobuf.Any` annotation.
pub trait Annotation: prost::Message + Default {
    const NAME: &'static str;

    fn type_url() -> String {
        format!("type.googleapis.com/{PACKAGE}.{}", Self::NAME)
    }

    fn to_any(&self) -> Any {
        Any { type_url: Self::type_url(), value: self.encode_to_vec() }
    }

    /// The first annotation of this type in `annotations`, decoded.
    fn find_in(annotations: &[Any]) -> Result<Option<Self>, prost::DecodeError> {
        annotations
            .iter()
            .find(|any| any.type_url == Self::type_url())
            .map(|any| Self::decode(any.value.as_slice()))
            .transpose()
    }
}

/// `ResourceType.Trait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum Trait {
    Unspecified = 0,
    User = 1,
    Group = 2,
    Role = 3,
    App = 4,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceType {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub display_name: String,
    #[prost(enumeration = "Trait", repeated, tag = "3")]
    pub traits: Vec<i32>,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
    #[prost(string, tag = "5")]
    pub description: String,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Message)]
pub struct ResourceId {
    #[prost(string, tag = "1")]
    pub resource_type: String,
    #[prost(string, tag = "2")]
    pub resource: String,
}

/// `Status.ResourceStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum ResourceStatus {
    Unspecified = 0,
    Enabled = 1,
    Disabled = 2,
}

/// `Status` (the resource's, field 11 of Resource).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(enumeration = "ResourceStatus", tag = "1")]
    pub status: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    #[prost(message, optional, tag = "1")]
    pub id: Option<ResourceId>,
    #[prost(message, optional, tag = "2")]
    pub parent_resource_id: Option<ResourceId>,
    #[prost(string, tag = "3")]
    pub display_name: String,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
    #[prost(string, tag = "5")]
    pub description: String,
    #[prost(message, optional, tag = "9")]
    pub profile: Option<Struct>,
    #[prost(message, optional, tag = "11")]
    pub status: Option<Status>,
}

/// `Entitlement.PurposeValue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum Purpose {
    Unspecified = 0,
    Assignment = 1,
    Permission = 2,
    Ownership = 3,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Entitlement {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(string, tag = "3")]
    pub display_name: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, repeated, tag = "5")]
    pub grantable_to: Vec<ResourceType>,
    #[prost(message, repeated, tag = "6")]
    pub annotations: Vec<Any>,
    #[prost(enumeration = "Purpose", tag = "7")]
    pub purpose: i32,
    #[prost(string, tag = "8")]
    pub slug: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Grant {
    #[prost(message, optional, tag = "1")]
    pub entitlement: Option<Entitlement>,
    #[prost(message, optional, tag = "2")]
    pub principal: Option<Resource>,
    #[prost(string, tag = "3")]
    pub id: String,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UserEmail {
    #[prost(string, tag = "1")]
    pub address: String,
    #[prost(bool, tag = "2")]
    pub is_primary: bool,
}

/// `UserTrait.Status.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum UserStatusValue {
    Unspecified = 0,
    Enabled = 1,
    Disabled = 2,
}

/// `UserTrait.Status` (deprecated upstream in favour of the resource's status, still read).
#[derive(Clone, PartialEq, prost::Message)]
pub struct UserStatus {
    #[prost(enumeration = "UserStatusValue", tag = "1")]
    pub status: i32,
}

/// `UserTrait.AccountType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum AccountType {
    Unspecified = 0,
    Human = 1,
    Service = 2,
    System = 3,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UserTrait {
    #[prost(message, repeated, tag = "1")]
    pub emails: Vec<UserEmail>,
    #[prost(message, optional, tag = "2")]
    pub status: Option<UserStatus>,
    #[prost(message, optional, tag = "3")]
    pub profile: Option<Struct>,
    #[prost(enumeration = "AccountType", tag = "5")]
    pub account_type: i32,
    #[prost(string, tag = "6")]
    pub login: String,
    #[prost(string, repeated, tag = "13")]
    pub employee_ids: Vec<String>,
}

impl Annotation for UserTrait {
    const NAME: &'static str = "UserTrait";
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupTrait {
    #[prost(message, optional, tag = "2")]
    pub profile: Option<Struct>,
}

impl Annotation for GroupTrait {
    const NAME: &'static str = "GroupTrait";
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RoleTrait {
    #[prost(message, optional, tag = "1")]
    pub profile: Option<Struct>,
}

impl Annotation for RoleTrait {
    const NAME: &'static str = "RoleTrait";
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AppTrait {
    #[prost(message, optional, tag = "4")]
    pub profile: Option<Struct>,
}

impl Annotation for AppTrait {
    const NAME: &'static str = "AppTrait";
}

/// On a grant whose principal is itself a holder of other entitlements (a group): whoever
/// holds one of `entitlement_ids` holds this grant's entitlement too. `shallow` limits that
/// to the direct holders.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GrantExpandable {
    #[prost(string, repeated, tag = "1")]
    pub entitlement_ids: Vec<String>,
    #[prost(bool, tag = "2")]
    pub shallow: bool,
    #[prost(string, repeated, tag = "3")]
    pub resource_type_ids: Vec<String>,
}

impl Annotation for GrantExpandable {
    const NAME: &'static str = "GrantExpandable";
}

/// On a resource: resources of this type are listed under it (subscriptions under a tenant).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChildResourceType {
    #[prost(string, tag = "1")]
    pub resource_type_id: String,
}

impl Annotation for ChildResourceType {
    const NAME: &'static str = "ChildResourceType";
}
