//! The black-box conformance suite: the server and a mock IdP on random loopback ports, driven
//! over HTTP as clients drive them. Each test names the spec-checklist ids it proves.

#[cfg(test)]
#[path = "suite/attacks.rs"]
mod attacks;
#[cfg(test)]
#[path = "suite/challenges.rs"]
mod challenges;
#[cfg(test)]
#[path = "suite/custom_tools.rs"]
mod custom_tools;
#[cfg(test)]
#[path = "suite/dpop.rs"]
mod dpop;
#[cfg(test)]
#[path = "suite/dynamic_tools.rs"]
mod dynamic_tools;
#[cfg(test)]
#[path = "suite/fetch.rs"]
mod fetch;
#[cfg(test)]
#[path = "suite/gateway.rs"]
mod gateway;
#[cfg(test)]
#[path = "suite/get_me.rs"]
mod get_me;
#[cfg(test)]
#[path = "suite/hardening.rs"]
mod hardening;
#[cfg(test)]
#[path = "suite/keys.rs"]
mod keys;
#[cfg(test)]
#[path = "suite/metadata.rs"]
mod metadata;
#[cfg(test)]
#[path = "suite/properties.rs"]
mod properties;
#[cfg(test)]
#[path = "suite/providers.rs"]
mod providers;
#[cfg(test)]
#[path = "suite/rmcp_client.rs"]
mod rmcp_client;
#[cfg(test)]
#[path = "suite/scopes.rs"]
mod scopes;
#[cfg(test)]
#[path = "suite/transport.rs"]
mod transport;
#[cfg(test)]
#[path = "suite/user_sign_in.rs"]
mod user_sign_in;
#[cfg(test)]
#[path = "suite/wire_format.rs"]
mod wire_format;
