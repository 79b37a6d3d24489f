//! cargo-fuzz harness for `sheaf_core::fuzz::v2_sessions` (the body and its properties live there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sheaf_core::fuzz::v2_sessions(data));
