//! Black-box tests of the mock IdP over real sockets: every endpoint, every error, rotation with
//! grace, tenant isolation, fault injection, counters, the clock, the admin API, and tokens
//! verified by independent implementations (jsonwebtoken always, Node's jose when installed).

#[cfg(test)]
#[path = "api/harness.rs"]
mod harness;

#[cfg(test)]
#[path = "api/admin.rs"]
mod admin;
#[cfg(test)]
#[path = "api/algorithms.rs"]
mod algorithms;
#[cfg(test)]
#[path = "api/attack.rs"]
mod attack;
#[cfg(test)]
#[path = "api/binary.rs"]
mod binary;
#[cfg(test)]
#[path = "api/discovery.rs"]
mod discovery;
#[cfg(test)]
#[path = "api/documents.rs"]
mod documents;
#[cfg(test)]
#[path = "api/dpop.rs"]
mod dpop;
#[cfg(test)]
#[path = "api/faults.rs"]
mod faults;
#[cfg(test)]
#[path = "api/fixtures.rs"]
mod fixtures;
#[cfg(test)]
#[path = "api/guard.rs"]
mod guard;
#[cfg(test)]
#[path = "api/interop.rs"]
mod interop;
#[cfg(test)]
#[path = "api/rotation.rs"]
mod rotation;
#[cfg(test)]
#[path = "api/sign_in.rs"]
mod sign_in;
#[cfg(test)]
#[path = "api/tenants.rs"]
mod tenants;
#[cfg(test)]
#[path = "api/token.rs"]
mod token;
