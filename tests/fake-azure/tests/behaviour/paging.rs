use std::collections::HashSet;

use fake_azure::{Tenant, TenantShape};
use serde_json::Value;

use crate::client::Session;

fn ids(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|page| page["value"].as_array().cloned().unwrap_or_default())
        .map(|item| item["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn top_outside_1_to_999_is_400_with_graphs_message() {
    let session = Session::sample().await;
    for top in ["0", "1000"] {
        let reply = session.graph(&format!("/v1.0/users?$top={top}")).await;
        assert_eq!(reply.status, 400);
        let error = &reply.json()["error"];
        assert_eq!(error["code"], "Request_BadRequest");
        assert_eq!(
            error["message"],
            format!("Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.")
        );
    }
}

#[tokio::test]
async fn next_link_is_absolute_and_repeats_the_query_with_an_opaque_skiptoken() {
    let session = Session::sample().await;
    let page = session.graph("/v1.0/users?$top=3&$select=id,displayName").await.json();
    let next = page["@odata.nextLink"].as_str().unwrap();
    let prefix = format!("{}/v1.0/users?$top=3&$select=id,displayName&$skiptoken=X%27", session.azure.graph_url());
    assert!(next.starts_with(&prefix), "{next}");
    let token = &next[prefix.len()..];
    assert!(token.ends_with("%27") && token.trim_end_matches("%27").chars().all(|c| c.is_ascii_hexdigit()), "{token}");
}

#[tokio::test]
async fn following_next_links_verbatim_returns_every_user_exactly_once() {
    let shape = TenantShape { users: 250, groups: 0, ..TenantShape::small() };
    let session = Session::start(Tenant::generate(&shape)).await;
    let first = session.graph("/v1.0/users?$top=40&$select=id").await;
    let pages = session.all_pages(first, "@odata.nextLink", &[]).await;
    let ids = ids(&pages);
    assert_eq!(ids.len(), 250);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 250);
}

#[tokio::test]
async fn some_pages_are_shorter_than_top_but_still_link_onward() {
    let session = Session::sample().await;
    let first = session.graph("/v1.0/users?$top=3&$select=id").await;
    let pages = session.all_pages(first, "@odata.nextLink", &[]).await;
    let short_with_link =
        pages.iter().any(|page| page["value"].as_array().unwrap().len() < 3 && page["@odata.nextLink"].is_string());
    assert!(short_with_link);
    assert_eq!(ids(&pages).len(), 12);
}

#[tokio::test]
async fn small_member_lists_page_correctly_at_every_size() {
    let session = Session::sample().await;
    let users: Vec<String> = session.azure.tenant().users.iter().map(|user| user.id.clone()).collect();
    let group_id = session.id_of_group("Project Falcon (empty)");
    for size in 1..=users.len() {
        session.azure.mutate(|tenant| {
            let group = tenant.groups.iter_mut().find(|group| group.id == group_id).unwrap();
            group.members = users[..size].to_vec();
        });
        let first = session.graph(&format!("/v1.0/groups/{group_id}/members?$select=id&$top=2")).await;
        let pages = session.all_pages(first, "@odata.nextLink", &[]).await;
        assert_eq!(ids(&pages), users[..size].to_vec(), "group of {size}");
    }
}

#[tokio::test]
async fn collection_smaller_than_top_has_no_next_link() {
    let session = Session::sample().await;
    let page = session.graph("/v1.0/users?$top=999").await.json();
    assert!(page.get("@odata.nextLink").is_none());
    assert_eq!(page["value"].as_array().unwrap().len(), 12);
}

#[tokio::test]
async fn tampered_skiptoken_is_400() {
    let session = Session::sample().await;
    let page = session.graph("/v1.0/users?$top=3").await.json();
    let next = page["@odata.nextLink"].as_str().unwrap();
    let position = next.find("X%27").unwrap() + 4;
    let mut tampered = next.to_owned();
    let replacement = if &next[position..position + 1] == "A" { "B" } else { "A" };
    tampered.replace_range(position..position + 1, replacement);
    assert_eq!(session.graph(&tampered).await.status, 400);
    let elsewhere = next.replace("/v1.0/users", "/v1.0/groups");
    assert_eq!(session.graph(&elsewhere).await.status, 400);
}

#[tokio::test]
async fn odata_count_is_on_the_first_page_only() {
    let session = Session::sample().await;
    let headers = [("ConsistencyLevel", "eventual")];
    let first = session.graph_eventual("/v1.0/users?$top=5&$count=true").await;
    let pages = session.all_pages(first, "@odata.nextLink", &headers).await;
    assert_eq!(pages[0]["@odata.count"], 12);
    assert!(pages[1..].iter().all(|page| page.get("@odata.count").is_none()));
}

#[tokio::test]
async fn consistency_level_is_not_remembered_across_next_links() {
    let session = Session::sample().await;
    let first = session.graph_eventual("/v1.0/users?$top=5&$count=true").await.json();
    let next = first["@odata.nextLink"].as_str().unwrap();
    let without_header = session.graph(next).await;
    assert_eq!(without_header.status, 400);
    assert_eq!(without_header.json()["error"]["code"], "Request_UnsupportedQuery");
}
