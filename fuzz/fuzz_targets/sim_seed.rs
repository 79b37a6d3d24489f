//! cargo-fuzz harness for `sheaf_sim::fuzz::sim_seed` (the body and its input format live there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sheaf_sim::fuzz::sim_seed(data));
