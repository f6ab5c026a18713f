use super::*;

const MINIMAL: &str = r#"
[[tenant]]
id = "contoso"
[tenant.credentials]
client_id_env = "BATON_AZURE_CLIENT_ID"
tenant_id_env = "BATON_AZURE_TENANT_ID"
client_secret_env = "BATON_AZURE_CLIENT_SECRET"
"#;

fn parse_error(text: &str) -> String {
    format!("{:#}", parse(text, Path::new("/etc/connector-host")).expect_err("the file is refused"))
}

#[test]
fn a_minimal_tenant_gets_the_documented_defaults() {
    let tenants = parse(MINIMAL, Path::new("/etc/connector-host")).unwrap();
    let tenant = &tenants[0];
    assert_eq!(tenant.id, "contoso");
    assert_eq!(tenant.sync_interval, Duration::from_secs(6 * 3600));
    assert!(!tenant.provisioning && !tenant.mailbox_settings && !tenant.skip_ad_groups);
    assert_eq!(tenant.endpoints.graph.as_str(), "https://graph.microsoft.com/");
    assert_eq!(tenant.credentials.client_secret, ValueSource::Env("BATON_AZURE_CLIENT_SECRET".into()));
    assert_eq!(tenant.caps.max_concurrent_requests, 16);
}

#[test]
fn defaults_apply_unless_the_tenant_overrides_them() {
    let text = format!(
        "[defaults]\nsync_interval = \"1h\"\nazure_cloud = \"usgov\"\nprovisioning = true\n{MINIMAL}\
         [[tenant]]\nid = \"fabrikam\"\nsync_interval = \"15m\"\nprovisioning = false\n\
         [tenant.credentials]\nclient_id = \"c\"\ntenant_id_file = \"fabrikam/tenant-id\"\nclient_secret_file = \"/var/run/secrets/fabrikam/client-secret\"\n"
    );
    let tenants = parse(&text, Path::new("/etc/connector-host")).unwrap();
    assert_eq!(tenants[0].sync_interval, Duration::from_secs(3600));
    assert!(tenants[0].provisioning);
    assert_eq!(tenants[0].endpoints.graph.as_str(), "https://graph.microsoft.us/");
    assert_eq!(tenants[1].sync_interval, Duration::from_secs(900));
    assert!(!tenants[1].provisioning);
    assert_eq!(tenants[1].credentials.tenant_id, ValueSource::File("/etc/connector-host/fabrikam/tenant-id".into()));
}

#[test]
fn a_literal_client_secret_is_refused_with_the_alternatives() {
    let text = MINIMAL.replace("client_secret_env = \"BATON_AZURE_CLIENT_SECRET\"", "client_secret = \"hunter2\"");
    let error = parse_error(&text);
    assert!(error.contains("tenant contoso"), "{error}");
    assert!(error.contains("client_secret_env") && error.contains("client_secret_file"), "{error}");
    assert!(!error.contains("hunter2"), "the secret is never repeated: {error}");
}

#[test]
fn an_unknown_key_is_refused_naming_the_tenant_and_the_key() {
    let error = parse_error(&MINIMAL.replace("id = \"contoso\"", "id = \"contoso\"\nprovisoning = true"));
    assert!(error.contains("tenant contoso") && error.contains("provisoning"), "{error}");
    let error = parse_error(&MINIMAL.replace("client_id_env", "client_ident_env"));
    assert!(error.contains("tenant contoso") && error.contains("client_ident_env"), "{error}");
    let error = parse_error(&format!("[defaults]\nsync_intervall = \"1h\"\n{MINIMAL}"));
    assert!(error.contains("[defaults]") && error.contains("sync_intervall"), "{error}");
}

#[test]
fn ids_must_be_unique_lowercase_and_not_reserved() {
    let error = parse_error(&format!("{MINIMAL}{MINIMAL}"));
    assert!(error.contains("used twice"), "{error}");
    let error = parse_error(&MINIMAL.replace("contoso", "Contoso_EU"));
    assert!(error.contains("a-z, 0-9 and '-'"), "{error}");
    let error = parse_error(&MINIMAL.replace("contoso", "cache"));
    assert!(error.contains("reserved"), "{error}");
}

#[test]
fn each_credential_part_needs_exactly_one_source() {
    let error = parse_error(&MINIMAL.replace("client_id_env = \"BATON_AZURE_CLIENT_ID\"", ""));
    assert!(error.contains("no client_id"), "{error}");
    let error = parse_error(&MINIMAL.replace("tenant_id_env", "tenant_id = \"x\"\ntenant_id_env"));
    assert!(error.contains("tenant_id is given more than once"), "{error}");
}

#[test]
fn plain_http_endpoints_are_refused_off_loopback_naming_the_key() {
    let error =
        parse_error(&MINIMAL.replace("id = \"contoso\"", "id = \"contoso\"\ngraph_url = \"http://graph.example.com\""));
    assert!(error.contains("graph_url") && error.contains("use https"), "{error}");
}

#[test]
fn connector_options_cannot_override_what_the_host_sets() {
    let text = format!("{MINIMAL}[tenant.connector_options]\ngraph-url = \"https://evil.example\"\n");
    let error = parse_error(&text);
    assert!(error.contains("connector_options.graph-url"), "{error}");
    let text = format!("{MINIMAL}[tenant.connector_options]\ngraph-scope = \"https://vault.azure.net/.default\"\n");
    let error = parse_error(&text);
    assert!(error.contains("connector_options.graph-scope") && error.contains("azure_cloud"), "{error}");
    let text = format!("{MINIMAL}[tenant.connector_options]\nrbac-role-catalogue = \"all\"\n");
    let tenants = parse(&text, Path::new("/")).unwrap();
    assert_eq!(tenants[0].connector_options[0].key, "rbac-role-catalogue");
}

#[test]
fn a_bad_interval_says_how_to_write_one() {
    let error = parse_error(&MINIMAL.replace("id = \"contoso\"", "id = \"contoso\"\nsync_interval = \"often\""));
    assert!(error.contains("sync_interval") && error.contains("\"6h\""), "{error}");
}

#[test]
fn call_limits_and_the_memory_budget_are_per_tenant_with_defaults() {
    let text = format!(
        "[defaults]\ncall_deadline = \"90s\"\n{MINIMAL}\
         [[tenant]]\nid = \"fabrikam\"\ncall_memory_mib = 64\ncall_deadline = \"20s\"\nmemory_budget_mib = 200\n\
         [tenant.credentials]\nclient_id = \"c\"\ntenant_id = \"t\"\nclient_secret_env = \"S\"\n"
    );
    let tenants = parse(&text, Path::new("/etc/connector-host")).unwrap();
    assert_eq!(tenants[0].sandbox.call_limits.memory_bytes, None, "unset: serve's --call-memory-mib");
    assert_eq!(tenants[0].sandbox.call_limits.call_timeout, Some(Duration::from_secs(90)));
    assert_eq!(tenants[0].sandbox.memory_budget_bytes, 1024 * 1024 * 1024);
    assert_eq!(tenants[1].sandbox.call_limits.memory_bytes, Some(64 * 1024 * 1024));
    assert_eq!(tenants[1].sandbox.call_limits.call_timeout, Some(Duration::from_secs(20)));
    assert_eq!(tenants[1].sandbox.memory_budget_bytes, 200 * 1024 * 1024);
}

#[test]
fn a_call_memory_limit_no_guest_can_address_is_refused() {
    let text = MINIMAL.replace("id = \"contoso\"", "id = \"contoso\"\ncall_memory_mib = 100000");
    assert!(
        parse_error(&text).contains("call_memory_mib 100000 is more than a call can address"),
        "{}",
        parse_error(&text)
    );
}
