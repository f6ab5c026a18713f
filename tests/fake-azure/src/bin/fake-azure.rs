//! Runs the fake Azure until Ctrl-C, for manual runs of the connector: the sample tenant, or with
//! `--generated <users>` a generated tenant of that many users (the rest of `TenantShape::small`),
//! to look at a large sync by hand (e.g. with `baton`, docs/baton.md).

use anyhow::Context as _;
use fake_azure::{FakeAzure, Tenant, TenantShape};

/// The tenant the command line asks for: no arguments is the sample tenant.
fn tenant_from_args() -> anyhow::Result<Tenant> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(Tenant::sample()),
        [flag, users] if flag == "--generated" => {
            let users = users.parse().with_context(|| format!("--generated takes a number of users, not {users:?}"))?;
            Ok(Tenant::generate(&TenantShape { users, ..TenantShape::small() }))
        }
        _ => anyhow::bail!("usage: fake-azure [--generated <users>]"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tenant = tenant_from_args()?;
    let (tenant_id, client_id, client_secret) =
        (tenant.tenant_id.clone(), tenant.client_id.clone(), tenant.client_secret.clone());
    let azure = FakeAzure::start(tenant).await?;
    println!("login:         {}", azure.login_url());
    println!("graph:         {}", azure.graph_url());
    println!("arm:           {}", azure.arm_url());
    println!("tenant id:     {tenant_id}");
    println!("client id:     {client_id}");
    println!("client secret: {client_secret}");
    println!("token:         POST {}/{tenant_id}/oauth2/v2.0/token", azure.login_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
