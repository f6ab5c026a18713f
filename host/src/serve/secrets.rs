//! Where a tenant's credentials come from: an environment variable or a file (a mounted
//! Kubernetes Secret), read again at every sync so a rotated secret is picked up without a
//! restart. The client id and directory id are not secret and may also be written inline.

use std::path::PathBuf;

use anyhow::bail;

use crate::credentials::{ClientCredentials, Secret};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSource {
    Inline(String),
    Env(String),
    File(PathBuf),
}

impl ValueSource {
    /// The value, trimmed (Secret files usually end with a newline). The error names the
    /// tenant, the field and where the value was expected, never the value.
    fn read(&self, tenant: &str, field: &str) -> anyhow::Result<String> {
        let value = match self {
            ValueSource::Inline(value) => value.clone(),
            ValueSource::Env(variable) => match std::env::var(variable) {
                Ok(value) => value,
                Err(std::env::VarError::NotPresent) => bail!(
                    "tenant {tenant}: {field} comes from the environment variable {variable}, which is not set: set it (e.g. from a Kubernetes Secret) or change credentials.{field}_env in the tenants file"
                ),
                Err(std::env::VarError::NotUnicode(_)) => {
                    bail!("tenant {tenant}: the environment variable {variable} ({field}) is not valid UTF-8")
                }
            },
            ValueSource::File(path) => std::fs::read_to_string(path).map_err(|error| {
                anyhow::anyhow!(
                    "tenant {tenant}: cannot read {field} from {} ({error}): mount the Secret there or change credentials.{field}_file in the tenants file",
                    path.display()
                )
            })?,
        };
        let value = value.trim();
        if value.is_empty() {
            bail!("tenant {tenant}: {field} is empty ({}): give it a value", self.describe());
        }
        Ok(value.to_owned())
    }

    fn describe(&self) -> String {
        match self {
            ValueSource::Inline(_) => "written in the tenants file".into(),
            ValueSource::Env(variable) => format!("environment variable {variable}"),
            ValueSource::File(path) => format!("file {}", path.display()),
        }
    }
}

/// The three parts of an app registration's credentials, by where each is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSources {
    pub client_id: ValueSource,
    pub tenant_id: ValueSource,
    /// Never `Inline`: the tenants file refuses secrets.
    pub client_secret: ValueSource,
}

impl CredentialSources {
    /// Reads the credentials now. Called at every sync and provisioning request.
    pub fn resolve(&self, tenant: &str) -> anyhow::Result<ClientCredentials> {
        Ok(ClientCredentials {
            client_id: self.client_id.read(tenant, "client_id")?,
            tenant_id: self.tenant_id.read(tenant, "tenant_id")?,
            client_secret: Secret::new(self.client_secret.read(tenant, "client_secret")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_is_read_at_each_resolution_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client-secret");
        std::fs::write(&file, "first-secret\n").unwrap();
        let sources = CredentialSources {
            client_id: ValueSource::Inline("client".into()),
            tenant_id: ValueSource::Inline("directory".into()),
            client_secret: ValueSource::File(file.clone()),
        };
        assert_eq!(sources.resolve("contoso").unwrap().client_secret.expose(), "first-secret");
        std::fs::write(&file, "rotated-secret\n").unwrap();
        assert_eq!(sources.resolve("contoso").unwrap().client_secret.expose(), "rotated-secret");
    }

    #[test]
    fn a_missing_secret_names_the_tenant_and_the_source_but_no_value() {
        let sources = CredentialSources {
            client_id: ValueSource::Inline("client".into()),
            tenant_id: ValueSource::Inline("directory".into()),
            client_secret: ValueSource::File("/nonexistent/connector-host/secret".into()),
        };
        let error = sources.resolve("contoso").unwrap_err().to_string();
        assert!(error.contains("tenant contoso"), "{error}");
        assert!(error.contains("/nonexistent/connector-host/secret"), "{error}");
        assert!(error.contains("client_secret_file"), "{error}");
    }
}
