//! Black-box conformance tests of the MCP OAuth server against the mock IdP and real IdPs.
//!
//! The harness and suites arrive with the server; the mock IdP's own tests live in `mock-idp/tests`.
