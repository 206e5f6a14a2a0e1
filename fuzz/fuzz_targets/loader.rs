//! Fuzzes the cache file loader: `Loaded::from_bytes` must never panic, whatever the bytes,
//! and what it accepts as a file must survive a save-and-load round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage_availability::Loaded;

fuzz_target!(|data: &[u8]| {
    if let Loaded::File(file) = Loaded::from_bytes(data) {
        let bytes = serde_json::to_vec_pretty(&file).expect("a loaded file serialises");
        assert!(
            matches!(Loaded::from_bytes(&bytes), Loaded::File(_)),
            "a file the loader accepted does not load after being written again"
        );
    }
});
