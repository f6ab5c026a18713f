//! Serving a Graph collection or entity: query options, paging, `@odata.*` annotations.

use serde_json::{Map, Value};

use super::entities::{EntityType, GraphEntity, canonical_name, to_json};
use super::error::GraphError;
use super::filter::{Filter, OrderBy, Search};
use super::{GraphCall, GraphReply};
use crate::paging::{PageCursor, plan_page};

/// Graph's default page size for directory collections.
const DEFAULT_TOP: usize = 100;
const MAX_TOP: usize = 999;
/// An expanded collection (a group's owners, say) holds at most this many objects, silently: a
/// client must page the relationship itself when it may hold more.
const EXPANDED_COLLECTION_LIMIT: usize = 20;
/// Pages hold at most this many objects when a collection of each is expanded.
const MAX_TOP_WITH_EXPANDED_COLLECTION: usize = 100;
/// Navigation properties that are collections (the others, like `principal`, are single objects).
const COLLECTION_NAVIGATIONS: &[&str] = &["owners", "members", "memberOf", "transitiveMembers", "appRoleAssignedTo"];

/// `$expand=name`, or `$expand=name($select=a,b)`.
struct Expansion {
    name: &'static str,
    select: Option<Vec<String>>,
}

impl Expansion {
    fn parse(text: &str, spec: &CollectionSpec) -> Result<Expansion, GraphError> {
        let text = text.trim();
        let (name, options) = match text.split_once('(') {
            Some((name, rest)) => (name.trim(), Some(rest.strip_suffix(')').unwrap_or(rest))),
            None => (text, None),
        };
        let name = canonical_name(spec.expandable, name).ok_or_else(|| {
            GraphError::bad_request(format!(
                "Parsing OData Select and Expand failed: Could not find a property named '{name}' on type '{}'.",
                spec.type_name
            ))
        })?;
        let select = match options.map(str::trim).filter(|options| !options.is_empty()) {
            None => None,
            Some(options) => {
                let names = options
                    .strip_prefix("$select=")
                    .ok_or_else(|| GraphError::bad_request(format!("Unsupported option in $expand: '{options}'.")))?;
                Some(names.split(',').map(|name| name.trim().to_owned()).filter(|name| !name.is_empty()).collect())
            }
        };
        Ok(Expansion { name, select })
    }

    fn is_collection(&self) -> bool {
        COLLECTION_NAVIGATIONS.iter().any(|name| name.eq_ignore_ascii_case(self.name))
    }

    /// The expanded value as Graph returns it: collections cut to their limit, objects narrowed
    /// to the nested `$select` (their `@odata.type` stays).
    fn shape(&self, value: Value) -> Value {
        let narrow = |value: Value| match (value, &self.select) {
            (Value::Object(object), Some(select)) => Value::Object(
                object
                    .into_iter()
                    .filter(|(key, _)| key == "@odata.type" || select.iter().any(|name| name.eq_ignore_ascii_case(key)))
                    .collect(),
            ),
            (other, _) => other,
        };
        match value {
            Value::Array(items) => {
                Value::Array(items.into_iter().take(EXPANDED_COLLECTION_LIMIT).map(narrow).collect())
            }
            other => narrow(other),
        }
    }
}

/// What one collection allows; the caller supplies the items.
pub struct CollectionSpec {
    /// The part of `@odata.context` after `$metadata#`, e.g. `users` or `directoryObjects`.
    pub context: String,
    /// directoryObject collections mix types: items carry `@odata.type`, `$select` is not validated.
    pub polymorphic: bool,
    /// Property names `$select` may name (ignored when polymorphic) and the type for error messages.
    pub selectable: &'static [&'static str],
    pub type_name: &'static str,
    pub filterable: &'static [&'static str],
    pub expandable: &'static [&'static str],
}

impl CollectionSpec {
    /// A collection of entities of one type: `$select` may name its properties.
    pub fn new(context: impl Into<String>, entity_type: &'static EntityType) -> Self {
        CollectionSpec {
            context: context.into(),
            polymorphic: false,
            selectable: entity_type.properties,
            type_name: entity_type.name(),
            filterable: &[],
            expandable: &[],
        }
    }

    pub fn directory_objects() -> Self {
        CollectionSpec {
            context: "directoryObjects".into(),
            polymorphic: true,
            selectable: &[],
            type_name: "microsoft.graph.directoryObject",
            filterable: &["onPremisesSyncEnabled", "displayName", "id"],
            expandable: &[],
        }
    }

    pub fn filterable(mut self, properties: &'static [&'static str]) -> Self {
        self.filterable = properties;
        self
    }

    pub fn expandable(mut self, properties: &'static [&'static str]) -> Self {
        self.expandable = properties;
        self
    }
}

/// `$select` as the client wrote it, validated against what the type has.
pub fn selection(call: &GraphCall, spec: &CollectionSpec) -> Result<Option<Vec<String>>, GraphError> {
    let Some(raw) = call.request.query.get("$select") else {
        return Ok(None);
    };
    let names: Vec<String> =
        raw.split(',').map(|name| name.trim().to_owned()).filter(|name| !name.is_empty()).collect();
    if !spec.polymorphic
        && let Some(unknown) = names.iter().find(|name| canonical_name(spec.selectable, name).is_none())
    {
        return Err(GraphError::bad_request(format!(
            "Parsing OData Select and Expand failed: Could not find a property named '{unknown}' on type '{}'.",
            spec.type_name
        )));
    }
    Ok((!names.is_empty()).then_some(names))
}

pub fn page_size(call: &GraphCall) -> Result<usize, GraphError> {
    match call.request.query.get("$top") {
        None => Ok(DEFAULT_TOP),
        Some(text) => text.trim().parse::<usize>().ok().filter(|top| (1..=MAX_TOP).contains(top)).ok_or_else(|| {
            GraphError::bad_request(format!(
                "Invalid page size specified: '{text}'. Must be between 1 and 999 inclusive."
            ))
        }),
    }
}

fn count_requested(call: &GraphCall) -> Result<bool, GraphError> {
    match call.request.query.get("$count") {
        None => Ok(false),
        Some(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Some(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        Some(text) => Err(GraphError::bad_request(format!("Invalid $count value '{text}'."))),
    }
}

fn unsupported_property(property: &str, spec: &CollectionSpec) -> GraphError {
    GraphError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "Request_UnsupportedQuery",
        format!(
            "Unsupported or invalid query filter clause specified for property '{property}' of resource '{}'.",
            spec.type_name
        ),
    )
}

fn check_properties<'p>(
    mut properties: impl Iterator<Item = &'p str>,
    spec: &CollectionSpec,
) -> Result<(), GraphError> {
    match properties.find(|property| canonical_name(spec.filterable, property).is_none()) {
        Some(property) => Err(unsupported_property(property, spec)),
        None => Ok(()),
    }
}

/// Serves one page of `items` (or their `$count` when `count_only`).
/// A collection's items, made on demand: all of them when a request filters, searches, sorts
/// or counts, otherwise only those of the page served, so paging through a 100,000-user
/// collection costs a page per request, not the whole collection.
pub struct LazyItems<'a> {
    pub len: usize,
    pub item: Box<dyn Fn(usize) -> Box<dyn GraphEntity + 'a> + 'a>,
}

impl<'a> LazyItems<'a> {
    /// Views of `items` made by `view`.
    pub fn of<T, V: GraphEntity + 'a>(items: &'a [T], view: impl Fn(&'a T) -> V + 'a) -> Self {
        LazyItems { len: items.len(), item: Box::new(move |index| Box::new(view(&items[index]))) }
    }
}

/// Serves one page of `items` (or their `$count` when `count_only`).
pub fn list(
    call: &GraphCall,
    spec: &CollectionSpec,
    items: Vec<&dyn GraphEntity>,
    count_only: bool,
) -> Result<GraphReply, GraphError> {
    list_lazily(call, spec, LazyItems::of(&items, |item| *item), count_only)
}

/// Serves one page of `items` (or their `$count` when `count_only`), making only the items the
/// request needs.
pub fn list_lazily<'a>(
    call: &GraphCall,
    spec: &CollectionSpec,
    items: LazyItems<'a>,
    count_only: bool,
) -> Result<GraphReply, GraphError> {
    let query = &call.request.query;
    let expansion = query.get("$expand").map(|text| Expansion::parse(text, spec)).transpose()?;
    let mut top = page_size(call)?;
    if expansion.as_ref().is_some_and(Expansion::is_collection) {
        top = top.min(MAX_TOP_WITH_EXPANDED_COLLECTION);
    }
    let select = selection(call, spec)?;
    let count = count_requested(call)?;
    let filter = query
        .get("$filter")
        .map(|text| Filter::parse(text).map_err(|_| GraphError::unsupported_query()))
        .transpose()?;
    let search = query
        .get("$search")
        .map(|text| Search::parse(text).map_err(|reason| GraphError::bad_request(format!("Syntax error: {reason}."))))
        .transpose()?;
    let order = query
        .get("$orderby")
        .map(|text| OrderBy::parse(text).map_err(|_| GraphError::unsupported_query()))
        .transpose()?;
    if let Some(filter) = &filter {
        check_properties(filter.properties().into_iter(), spec)?;
    }
    if let Some(search) = &search {
        check_properties(search.properties(), spec)?;
    }
    if let Some(order) = &order {
        check_properties(std::iter::once(order.property.as_str()), spec)?;
    }
    let expand = expansion.as_ref().map(|expansion| expansion.name);

    // Advanced queries need ConsistencyLevel: eventual on every request (nextLinks included),
    // and the ones with `ne`/`not`/`endsWith` or `$orderby` with `$filter` also need `$count=true`.
    let filter_is_advanced = filter.as_ref().is_some_and(Filter::is_advanced) || (order.is_some() && filter.is_some());
    let advanced = count || count_only || search.is_some() || filter_is_advanced;
    if advanced && (!call.eventual_consistency() || (filter_is_advanced && !count)) {
        return Err(GraphError::unsupported_query());
    }

    let collection_key = call.request.path();
    let cursor = match query.get("$skiptoken") {
        None => PageCursor::FIRST,
        Some(token) => call
            .shared
            .page_tokens
            .decode(&collection_key, token)
            .ok_or_else(|| GraphError::bad_request(format!("Invalid skip token '{token}'.")))?,
    };
    let every_item: Vec<Box<dyn GraphEntity + 'a>>;
    let page_items: Vec<Box<dyn GraphEntity + 'a>>;
    let (served, total, page): (Vec<&dyn GraphEntity>, usize, _) =
        if filter.is_some() || search.is_some() || order.is_some() || count || count_only {
            every_item = (0..items.len).map(|index| (items.item)(index)).collect();
            let mut matching: Vec<&dyn GraphEntity> = every_item
                .iter()
                .map(|item| item.as_ref())
                .filter(|item| filter.as_ref().is_none_or(|filter| filter.matches(*item)))
                .filter(|item| search.as_ref().is_none_or(|search| search.matches(*item)))
                .collect();
            if let Some(order) = &order {
                matching.sort_by(|left, right| order.compare(*left, *right));
            }
            if count_only {
                return Ok(GraphReply::Text(matching.len().to_string()));
            }
            let page = plan_page(matching.len(), top, cursor, true);
            (matching[page.items.clone()].to_vec(), matching.len(), page)
        } else {
            let page = plan_page(items.len, top, cursor, true);
            page_items = page.items.clone().map(|index| (items.item)(index)).collect();
            (page_items.iter().map(|item| item.as_ref()).collect(), items.len, page)
        };
    let values: Vec<Value> = served
        .iter()
        .map(|item| {
            let mut object = to_json(*item, select.as_deref(), spec.polymorphic);
            if let Some(expansion) = &expansion
                && let Some(expanded) = item.property(expansion.name)
            {
                object.insert(expansion.name.to_owned(), expansion.shape(expanded));
            }
            Value::Object(object)
        })
        .collect();

    let mut body = Map::new();
    body.insert("@odata.context".into(), Value::from(context_url(call, &spec.context, select.as_deref(), expand)));
    if count && cursor == PageCursor::FIRST {
        body.insert("@odata.count".into(), Value::from(total));
    }
    if let Some(next) = page.next {
        body.insert("@odata.nextLink".into(), Value::from(call.next_link(next)));
    }
    body.insert("value".into(), Value::Array(values));
    Ok(GraphReply::ok(Value::Object(body)))
}

/// `https://host/v1.0/$metadata#users(id,displayName)`: `$select` and `$expand` narrow the context.
pub fn context_url(call: &GraphCall, context: &str, select: Option<&[String]>, expand: Option<&str>) -> String {
    let mut parts: Vec<String> = select.map(<[String]>::to_vec).unwrap_or_default();
    parts.extend(expand.map(|name| format!("{name}()")));
    let narrowed = if parts.is_empty() { String::new() } else { format!("({})", parts.join(",")) };
    format!("{}#{context}{narrowed}", call.metadata_url())
}

/// One entity, e.g. `GET /users/{id}`: context `…#users/$entity`.
pub fn entity(call: &GraphCall, spec: &CollectionSpec, item: &dyn GraphEntity) -> Result<GraphReply, GraphError> {
    let select = selection(call, spec)?;
    let expansion = call.request.query.get("$expand").map(|text| Expansion::parse(text, spec)).transpose()?;
    let expand = expansion.as_ref().map(|expansion| expansion.name);
    let mut object = Map::new();
    object.insert(
        "@odata.context".into(),
        Value::from(format!("{}/$entity", context_url(call, &spec.context, select.as_deref(), expand))),
    );
    object.extend(to_json(item, select.as_deref(), spec.polymorphic));
    if let Some(expansion) = &expansion
        && let Some(expanded) = item.property(expansion.name)
    {
        object.insert(expansion.name.to_owned(), expansion.shape(expanded));
    }
    Ok(GraphReply::ok(Value::Object(object)))
}
