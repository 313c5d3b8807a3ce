//! criterion benches of the hot paths: see `benches/`. Run with `cargo bench -p osprey-benches`.
