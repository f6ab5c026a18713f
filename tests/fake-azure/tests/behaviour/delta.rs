use serde_json::Value;

use crate::client::Session;

/// The path and query of an absolute link the fake issued.
fn relative(session: &Session, link: &Value) -> String {
    let link = link.as_str().expect("a link");
    link.strip_prefix(&session.azure.graph_url()).expect("a link to the fake's Graph").to_owned()
}

#[tokio::test]
async fn latest_delta_token_returns_no_objects_then_only_what_changed() {
    let session = Session::sample().await;
    let start = session.graph("/v1.0/groups/delta?$select=id,displayName,members&$deltaToken=latest").await.json();
    assert_eq!(start["value"].as_array().map(Vec::len), Some(0));
    let group_id = session.azure.tenant().groups[0].id.clone();
    let user_id = session.azure.tenant().users.last().expect("users").id.clone();
    assert!(!session.azure.tenant().groups[0].members.is_empty(), "the sample's first group has members");
    session.azure.mutate(|tenant| {
        let group = &mut tenant.groups[0];
        group.members.remove(0);
        if !group.members.contains(&user_id) {
            group.members.push(user_id.clone());
        }
    });

    let changes = session.graph(&relative(&session, &start["@odata.deltaLink"])).await.json();
    let entries = changes["value"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{changes}");
    assert_eq!(entries[0]["id"], group_id.as_str());
    assert!(entries[0].get("displayName").is_none(), "a membership change alone carries no properties: {changes}");
    let members = entries[0]["members@delta"].as_array().expect("members@delta");
    assert!(members.iter().all(|member| member.get("@odata.type").is_some()));
    assert!(members.iter().any(|member| member.get("@removed").is_some()), "removed members say so: {changes}");
}

#[tokio::test]
async fn deleted_users_come_with_removed_and_forgotten_tokens_answer_410() {
    let session = Session::sample().await;
    let start = session.graph("/v1.0/users/delta?$select=id,displayName&$deltaToken=latest").await.json();
    let deleted = session.azure.tenant().users[0].id.clone();
    session.azure.mutate(|tenant| tenant.users.retain(|user| user.id != deleted));
    let changes = session.graph(&relative(&session, &start["@odata.deltaLink"])).await.json();
    assert_eq!(changes["value"][0]["id"], deleted.as_str());
    assert!(changes["value"][0]["@removed"].is_object(), "{changes}");

    session.azure.expire_delta_tokens();
    let gone = session.graph(&relative(&session, &changes["@odata.deltaLink"])).await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.json()["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn a_first_delta_round_pages_every_object_with_next_links() {
    let session = Session::start(fake_azure::Tenant::generate(&fake_azure::TenantShape::small())).await;
    let first = session.graph("/v1.0/users/delta?$select=id").await;
    let pages = session.all_pages(first, "@odata.nextLink", &[]).await;
    assert!(pages.len() > 1, "a first round of 2,500 users takes several pages");
    assert!(pages.last().is_some_and(|page| page["@odata.deltaLink"].is_string()), "the last page has the deltaLink");
    let users: usize = pages.iter().map(|page| page["value"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(users, session.azure.tenant().users.len());
}
