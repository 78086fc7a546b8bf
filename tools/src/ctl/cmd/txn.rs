//! `txn [-i]`: reads compares and requests from stdin (see `txn_parse`).

use cairn_schemas::rpc;

use super::Ctx;
use crate::ctl::client::request_failed;
use crate::ctl::exit::Exit;
use crate::ctl::flags::Parsed;
use crate::ctl::txn_parse::{read_compares, read_ops};

pub fn run(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    if !p.args.is_empty() {
        return Err(Exit::bad_args("txn command does not accept argument"));
    }
    // etcdctl creates its client before reading stdin.
    let client = ctx.global.connect()?;
    let interactive = p.bool("interactive");
    let prompt = |ctx: &mut Ctx, s: &str| {
        if interactive {
            let _ = writeln!(ctx.out, "{s}");
            let _ = ctx.out.flush();
        }
    };
    prompt(ctx, "compares:");
    let compare = read_compares(ctx.stdin)?;
    prompt(ctx, "success requests (get, put, del):");
    let success = read_ops(ctx.stdin)?;
    prompt(ctx, "failure requests (get, put, del):");
    let failure = read_ops(ctx.stdin)?;
    let req = rpc::TxnRequestT {
        compare: Some(compare),
        success: Some(success),
        failure: Some(failure),
    };
    let resp = client.txn(req).map_err(request_failed)?;
    let out = ctx.printer().txn(&resp)?;
    ctx.emit(out);
    Ok(())
}
