//! The optional JSON configuration file of the binary (and of any test that prefers data to
//! code): clients, default issuer settings, per-tenant settings.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::clients::Client;
use crate::error::IdpError;
use crate::issuer::IssuerSettings;

/// The configuration file's shape. Every field is optional; see `mock-idp/idp.example.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdpConfig {
    /// Registered clients; the demo client when empty.
    pub clients: Vec<Client>,
    /// Settings of every issuer without its own.
    pub settings: IssuerSettings,
    /// Settings per tenant name (`/{tenant}` issuers).
    pub tenants: HashMap<String, IssuerSettings>,
}

impl IdpConfig {
    /// Reads and parses a JSON configuration file.
    ///
    /// # Errors
    /// [`IdpError::ConfigFile`] or [`IdpError::ConfigSyntax`], naming the file.
    pub fn from_file(path: &Path) -> Result<Self, IdpError> {
        let text = std::fs::read_to_string(path).map_err(|source| IdpError::ConfigFile {
            path: path.to_owned(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| IdpError::ConfigSyntax {
            path: path.to_owned(),
            source,
        })
    }
}
