//! `cairn-dump`: offline inspection and verification of Cairn's data files.
//! See [`cairn_tools::dump`].

fn main() {
    std::process::exit(cairn_tools::dump::main());
}
