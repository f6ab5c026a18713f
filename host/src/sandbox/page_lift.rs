//! Results measured in guest memory before the host copies them.
//!
//! The typed bindings copy a whole result into host memory as they return it, and the canonical
//! ABI lets list elements point at the same bytes: a page of 10,000 resources whose profiles are
//! all one 100 MiB string in guest memory is 1 TB once copied. So every call that returns a
//! page or a connector error is called with the mirror types below, which hold only pointers
//! and lengths into guest memory (`WasmStr`, `WasmList`). Their sizes are added up first,
//! stopping at the first item or byte past the page's budget, and only a result within it is
//! copied. Text that the host keeps verbatim in logs and snapshots (notices, error messages) is
//! then cut to `TEXT_LIMIT`, with a marker saying so.

use anyhow::{anyhow, bail};
use wasmtime::Store;
use wasmtime::component::{ComponentType, Lift, WasmList, WasmStr};

use super::guest::GuestState;
use super::{
    ChangePage, ConnectorError, Entitlement, EntitlementPage, EntitlementPurpose, Grant, GrantPage, Notice,
    NoticeKind, ProvisionOutcome, ProvisionResult, Resource, ResourcePage, ResourceRef, UpstreamError,
};
use super::{GrantRemoval, idgov::connector::types::ForbiddenError, idgov::connector::types::ThrottledError};

/// The most a single page may hold. Azure pages hold at most 999 objects (Graph) or about a
/// thousand (ARM); ten times that leaves room for other connectors and still bounds what one
/// call can make the host keep.
#[derive(Clone, Copy, Debug)]
pub struct PageBudget {
    /// Elements of all the page's lists together.
    pub max_items: usize,
    /// Text in the page (ids, names, profiles, notices, errors), summed.
    pub max_bytes: usize,
}

impl PageBudget {
    pub const DEFAULT: PageBudget = PageBudget { max_items: 10_000, max_bytes: 32 * 1024 * 1024 };
}

/// The longest notice or error text the host keeps; the rest is cut with a marker.
pub const TEXT_LIMIT: usize = 4096;

/// Sizes added up so far, against a budget.
pub struct Tally<'a> {
    budget: PageBudget,
    what: &'a str,
    items: usize,
    bytes: usize,
}

impl<'a> Tally<'a> {
    pub fn new(budget: PageBudget, what: &'a str) -> Self {
        Tally { budget, what, items: 0, bytes: 0 }
    }

    fn add_items(&mut self, items: usize) -> anyhow::Result<()> {
        self.items = self.items.saturating_add(items);
        if self.items > self.budget.max_items {
            bail!(
                "the connector returned more than {} items in one page of {}; the host accepts at most {} per page (a connector must page larger results)",
                self.budget.max_items,
                self.what,
                self.budget.max_items
            );
        }
        Ok(())
    }

    fn add_bytes(&mut self, bytes: usize) -> anyhow::Result<()> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.budget.max_bytes {
            bail!(
                "the connector returned more than {} MiB in one page of {}; the host accepts at most {} MiB per page (a connector must page larger results)",
                self.budget.max_bytes / (1024 * 1024),
                self.what,
                self.budget.max_bytes / (1024 * 1024)
            );
        }
        Ok(())
    }
}

/// A value still in guest memory.
pub trait InGuest {
    type Owned;
    /// Adds its items and bytes to `tally`; fails as soon as the budget is passed.
    fn measure(&self, store: &mut Store<GuestState>, tally: &mut Tally) -> anyhow::Result<()>;
    /// Copies it into host memory. Call only after `measure` accepted it.
    fn lift(&self, store: &mut Store<GuestState>) -> anyhow::Result<Self::Owned>;
}

/// Measures `value`, then lifts it if it is within `budget`.
pub fn measured<T: InGuest>(
    store: &mut Store<GuestState>,
    value: &T,
    budget: PageBudget,
    what: &str,
) -> anyhow::Result<T::Owned> {
    value.measure(store, &mut Tally::new(budget, what))?;
    value.lift(store)
}

impl InGuest for WasmStr {
    type Owned = String;

    fn measure(&self, store: &mut Store<GuestState>, tally: &mut Tally) -> anyhow::Result<()> {
        // For UTF-8 (what Rust and most guests use) this borrows guest memory: nothing is copied.
        let text = self.to_str(&*store).map_err(not_text)?;
        tally.add_bytes(text.len())
    }

    fn lift(&self, store: &mut Store<GuestState>) -> anyhow::Result<String> {
        Ok(self.to_str(&*store).map_err(not_text)?.into_owned())
    }
}

impl<T: InGuest + Lift> InGuest for WasmList<T> {
    type Owned = Vec<T::Owned>;

    fn measure(&self, store: &mut Store<GuestState>, tally: &mut Tally) -> anyhow::Result<()> {
        tally.add_items(self.len())?;
        for index in 0..self.len() {
            element(self, store, index)?.measure(store, tally)?;
        }
        Ok(())
    }

    fn lift(&self, store: &mut Store<GuestState>) -> anyhow::Result<Self::Owned> {
        (0..self.len()).map(|index| element(self, store, index)?.lift(store)).collect()
    }
}

fn not_text(err: wasmtime::Error) -> anyhow::Error {
    anyhow!("the connector returned a string that is not valid text: {err:#}")
}

fn element<T: Lift>(list: &WasmList<T>, store: &mut Store<GuestState>, index: usize) -> anyhow::Result<T> {
    match list.get(&mut *store, index) {
        Some(element) => element.map_err(|err| anyhow!("the connector returned a malformed list element: {err:#}")),
        None => bail!("the connector returned a list shorter than it declared"),
    }
}

impl<T: InGuest> InGuest for Option<T> {
    type Owned = Option<T::Owned>;

    fn measure(&self, store: &mut Store<GuestState>, tally: &mut Tally) -> anyhow::Result<()> {
        self.as_ref().map_or(Ok(()), |value| value.measure(store, tally))
    }

    fn lift(&self, store: &mut Store<GuestState>) -> anyhow::Result<Self::Owned> {
        self.as_ref().map(|value| value.lift(store)).transpose()
    }
}

impl<T: InGuest, E: InGuest> InGuest for Result<T, E> {
    type Owned = Result<T::Owned, E::Owned>;

    fn measure(&self, store: &mut Store<GuestState>, tally: &mut Tally) -> anyhow::Result<()> {
        match self {
            Ok(value) => value.measure(store, tally),
            Err(error) => error.measure(store, tally),
        }
    }

    fn lift(&self, store: &mut Store<GuestState>) -> anyhow::Result<Self::Owned> {
        Ok(match self {
            Ok(value) => Ok(value.lift(store)?),
            Err(error) => Err(error.lift(store)?),
        })
    }
}

/// Values with no text or list in them: lifted as they are.
macro_rules! plain_in_guest {
    ($($plain:ty),*) => {$(
        impl InGuest for $plain {
            type Owned = $plain;
            fn measure(&self, _: &mut Store<GuestState>, _: &mut Tally) -> anyhow::Result<()> {
                Ok(())
            }
            fn lift(&self, _: &mut Store<GuestState>) -> anyhow::Result<$plain> {
                Ok(*self)
            }
        }
    )*};
}

plain_in_guest!((), u16, u64, NoticeKind, EntitlementPurpose, ProvisionOutcome);

/// A mirror record: measured field by field, lifted into the bindings' type of the same shape.
macro_rules! mirror_record {
    ($raw:ident => $owned:ident { $($field:ident),* $(,)? }) => {
        impl InGuest for $raw {
            type Owned = $owned;
            fn measure(&self, store: &mut Store<GuestState>, tally: &mut Tally) -> anyhow::Result<()> {
                $( self.$field.measure(store, tally)?; )*
                Ok(())
            }
            fn lift(&self, store: &mut Store<GuestState>) -> anyhow::Result<$owned> {
                Ok($owned { $( $field: self.$field.lift(store)?, )* })
            }
        }
    };
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawResourceRef {
    #[component(name = "resource-type")]
    resource_type: WasmStr,
    id: WasmStr,
}
mirror_record!(RawResourceRef => ResourceRef { resource_type, id });

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawResource {
    #[component(name = "resource-type")]
    resource_type: WasmStr,
    id: WasmStr,
    #[component(name = "display-name")]
    display_name: WasmStr,
    parent: Option<RawResourceRef>,
    #[component(name = "profile-json")]
    profile_json: WasmStr,
}
mirror_record!(RawResource => Resource { resource_type, id, display_name, parent, profile_json });

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawEntitlement {
    id: WasmStr,
    resource: RawResourceRef,
    slug: WasmStr,
    #[component(name = "display-name")]
    display_name: WasmStr,
    description: WasmStr,
    purpose: EntitlementPurpose,
    #[component(name = "grantable-to")]
    grantable_to: WasmList<WasmStr>,
}
mirror_record!(RawEntitlement => Entitlement { id, resource, slug, display_name, description, purpose, grantable_to });

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawGrant {
    id: WasmStr,
    #[component(name = "entitlement-id")]
    entitlement_id: WasmStr,
    principal: RawResourceRef,
}
mirror_record!(RawGrant => Grant { id, entitlement_id, principal });

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawNotice {
    kind: NoticeKind,
    subject: WasmStr,
    message: WasmStr,
    #[component(name = "missing-permission")]
    missing_permission: Option<WasmStr>,
}

impl InGuest for RawNotice {
    type Owned = Notice;

    fn measure(&self, store: &mut Store<GuestState>, tally: &mut Tally) -> anyhow::Result<()> {
        self.subject.measure(store, tally)?;
        self.message.measure(store, tally)?;
        self.missing_permission.measure(store, tally)
    }

    /// Notices are logged, stored and shown verbatim, so their text is cut.
    fn lift(&self, store: &mut Store<GuestState>) -> anyhow::Result<Notice> {
        Ok(Notice {
            kind: self.kind,
            subject: capped(self.subject.lift(store)?),
            message: capped(self.message.lift(store)?),
            missing_permission: self.missing_permission.lift(store)?.map(capped),
        })
    }
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawResourcePage {
    items: WasmList<RawResource>,
    #[component(name = "next-page-token")]
    next_page_token: Option<WasmStr>,
    notices: WasmList<RawNotice>,
}
mirror_record!(RawResourcePage => ResourcePage { items, next_page_token, notices });

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawEntitlementPage {
    items: WasmList<RawEntitlement>,
    #[component(name = "next-page-token")]
    next_page_token: Option<WasmStr>,
    notices: WasmList<RawNotice>,
}
mirror_record!(RawEntitlementPage => EntitlementPage { items, next_page_token, notices });

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawGrantPage {
    items: WasmList<RawGrant>,
    #[component(name = "next-page-token")]
    next_page_token: Option<WasmStr>,
    notices: WasmList<RawNotice>,
}
mirror_record!(RawGrantPage => GrantPage { items, next_page_token, notices });

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawGrantRemoval {
    #[component(name = "entitlement-id")]
    entitlement_id: WasmStr,
    #[component(name = "principal-id")]
    principal_id: WasmStr,
}
mirror_record!(RawGrantRemoval => GrantRemoval { entitlement_id, principal_id });

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawChangePage {
    upserted: WasmList<RawResource>,
    removed: WasmList<WasmStr>,
    #[component(name = "grants-added")]
    grants_added: WasmList<RawGrant>,
    #[component(name = "grants-removed")]
    grants_removed: WasmList<RawGrantRemoval>,
    notices: WasmList<RawNotice>,
    #[component(name = "next-page-token")]
    next_page_token: Option<WasmStr>,
    #[component(name = "delta-token")]
    delta_token: Option<WasmStr>,
}
mirror_record!(RawChangePage => ChangePage {
    upserted, removed, grants_added, grants_removed, notices, next_page_token, delta_token
});

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawProvisionResult {
    outcome: ProvisionOutcome,
    #[component(name = "grant-id")]
    grant_id: WasmStr,
    #[component(name = "request-id")]
    request_id: Option<WasmStr>,
}
mirror_record!(RawProvisionResult => ProvisionResult { outcome, grant_id, request_id });

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawUpstreamError {
    status: u16,
    code: WasmStr,
    message: WasmStr,
    #[component(name = "request-id")]
    request_id: Option<WasmStr>,
}

impl InGuest for RawUpstreamError {
    type Owned = UpstreamError;

    fn measure(&self, store: &mut Store<GuestState>, tally: &mut Tally) -> anyhow::Result<()> {
        self.code.measure(store, tally)?;
        self.message.measure(store, tally)?;
        self.request_id.measure(store, tally)
    }

    fn lift(&self, store: &mut Store<GuestState>) -> anyhow::Result<UpstreamError> {
        Ok(UpstreamError {
            status: self.status,
            code: capped(self.code.lift(store)?),
            message: capped(self.message.lift(store)?),
            request_id: self.request_id.lift(store)?.map(capped),
        })
    }
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawForbiddenError {
    upstream: RawUpstreamError,
    #[component(name = "missing-permission")]
    missing_permission: Option<WasmStr>,
}
mirror_record!(RawForbiddenError => ForbiddenError { upstream, missing_permission });

#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RawThrottledError {
    upstream: RawUpstreamError,
    #[component(name = "retry-after-ms")]
    retry_after_ms: Option<u64>,
}
mirror_record!(RawThrottledError => ThrottledError { upstream, retry_after_ms });

#[derive(ComponentType, Lift)]
#[component(variant)]
pub enum RawConnectorError {
    #[component(name = "invalid-config")]
    InvalidConfig(WasmStr),
    #[component(name = "unauthorized")]
    Unauthorized(RawUpstreamError),
    #[component(name = "forbidden")]
    Forbidden(RawForbiddenError),
    #[component(name = "not-found")]
    NotFound(RawUpstreamError),
    #[component(name = "throttled")]
    Throttled(RawThrottledError),
    #[component(name = "upstream")]
    Upstream(RawUpstreamError),
    #[component(name = "transport")]
    Transport(WasmStr),
    #[component(name = "invalid-response")]
    InvalidResponse(WasmStr),
    #[component(name = "unsupported")]
    Unsupported(WasmStr),
}

impl InGuest for RawConnectorError {
    type Owned = ConnectorError;

    fn measure(&self, store: &mut Store<GuestState>, tally: &mut Tally) -> anyhow::Result<()> {
        match self {
            RawConnectorError::InvalidConfig(text)
            | RawConnectorError::Transport(text)
            | RawConnectorError::InvalidResponse(text)
            | RawConnectorError::Unsupported(text) => text.measure(store, tally),
            RawConnectorError::Unauthorized(upstream)
            | RawConnectorError::NotFound(upstream)
            | RawConnectorError::Upstream(upstream) => upstream.measure(store, tally),
            RawConnectorError::Forbidden(forbidden) => forbidden.measure(store, tally),
            RawConnectorError::Throttled(throttled) => throttled.measure(store, tally),
        }
    }

    /// Errors are logged and shown verbatim, so their text is cut.
    fn lift(&self, store: &mut Store<GuestState>) -> anyhow::Result<ConnectorError> {
        let text = |text: &WasmStr, store: &mut Store<GuestState>| text.lift(store).map(capped);
        Ok(match self {
            RawConnectorError::InvalidConfig(message) => ConnectorError::InvalidConfig(text(message, store)?),
            RawConnectorError::Unauthorized(upstream) => ConnectorError::Unauthorized(upstream.lift(store)?),
            RawConnectorError::Forbidden(forbidden) => {
                let mut forbidden = forbidden.lift(store)?;
                forbidden.missing_permission = forbidden.missing_permission.map(capped);
                ConnectorError::Forbidden(forbidden)
            }
            RawConnectorError::NotFound(upstream) => ConnectorError::NotFound(upstream.lift(store)?),
            RawConnectorError::Throttled(throttled) => ConnectorError::Throttled(throttled.lift(store)?),
            RawConnectorError::Upstream(upstream) => ConnectorError::Upstream(upstream.lift(store)?),
            RawConnectorError::Transport(message) => ConnectorError::Transport(text(message, store)?),
            RawConnectorError::InvalidResponse(message) => ConnectorError::InvalidResponse(text(message, store)?),
            RawConnectorError::Unsupported(message) => ConnectorError::Unsupported(text(message, store)?),
        })
    }
}

/// `text` cut to `TEXT_LIMIT` bytes (at a character boundary), with a marker saying how long it was.
pub fn capped(mut text: String) -> String {
    if text.len() <= TEXT_LIMIT {
        return text;
    }
    let length = text.len();
    let mut end = TEXT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("… [cut by the host: {length} bytes in all]"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_boundary_with_a_marker() {
        let text = "é".repeat(TEXT_LIMIT);
        let cut = capped(text.clone());
        assert!(cut.len() < TEXT_LIMIT + 64, "{}", cut.len());
        assert!(cut.ends_with(&format!("[cut by the host: {} bytes in all]", text.len())), "{cut}");
        assert!(text.starts_with(cut.split('…').next().unwrap_or_default()));
    }

    #[test]
    fn short_text_is_kept_as_it_is() {
        assert_eq!(capped("forbidden".into()), "forbidden");
    }

    #[test]
    fn a_tally_stops_at_the_first_item_past_the_budget() {
        let mut tally = Tally::new(PageBudget { max_items: 2, max_bytes: 10 }, "list-resources of user");
        tally.add_items(2).expect("within the budget");
        let error = tally.add_items(1).expect_err("one item too many");
        assert!(error.to_string().contains("at most 2 per page"), "{error}");
        tally.add_bytes(10).expect("within the budget");
        tally.add_bytes(1).expect_err("one byte too many");
    }
}
