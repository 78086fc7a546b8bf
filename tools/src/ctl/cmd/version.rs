//! `version`.

use super::Ctx;
use crate::ctl::exit::Exit;
use crate::ctl::flags::Parsed;
use crate::ctl::help::API_VERSION;

pub fn run(ctx: &mut Ctx, _p: &Parsed) -> Result<(), Exit> {
    let _ = write!(
        ctx.out,
        "cairnctl version: {}\nAPI version: {API_VERSION}\n",
        env!("CARGO_PKG_VERSION")
    );
    Ok(())
}
