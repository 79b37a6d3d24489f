//! `sheaf-tests`: cross-crate integration and interoperability tests.
//!
//! The tests live in `tests/tests/`; each file is its own target, e.g.
//! `cargo test -p sheaf-tests --test wire_compat`, which checks Sheaf's encodings byte for byte
//! against the iroh-docs 0.101 crate.
