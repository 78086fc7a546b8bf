//! `cairnctl`: the etcdctl of Cairn. See [`cairn_tools::ctl`].

fn main() {
    std::process::exit(cairn_tools::ctl::main());
}
