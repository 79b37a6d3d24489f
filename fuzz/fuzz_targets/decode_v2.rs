//! cargo-fuzz harness for `sheaf_core::fuzz::decode_v2` (the body and its properties live there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sheaf_core::fuzz::decode_v2(data));
