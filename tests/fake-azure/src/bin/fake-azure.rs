//! Runs the fake Azure with the sample tenant until Ctrl-C, for manual runs of the connector.

use fake_azure::{FakeAzure, Tenant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tenant = Tenant::sample();
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
