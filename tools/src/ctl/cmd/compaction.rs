//! `compaction REV [--physical]`.

use cairn_schemas::rpc;

use super::Ctx;
use crate::ctl::client::request_failed;
use crate::ctl::exit::{Exit, ERROR};
use crate::ctl::flags::Parsed;
use crate::ctl::gofmt;

pub fn run(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    if p.args.len() != 1 {
        return Err(Exit::bad_args("compaction command needs 1 argument"));
    }
    let revision = gofmt::parse_int(&p.args[0], 10).map_err(|e| Exit::error(ERROR, e))?;
    let req = rpc::CompactionRequestT {
        revision,
        physical: p.bool("physical"),
    };
    ctx.global.connect()?.compact(req).map_err(request_failed)?;
    // etcdctl prints this line whatever the output format.
    let _ = writeln!(ctx.out, "compacted revision {revision}");
    Ok(())
}
