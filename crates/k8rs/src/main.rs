//! The `k8rs` binary: parses flags and composes the component crates.

fn main() {
    println!("k8rs");
}
