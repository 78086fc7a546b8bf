//! `put`, `get` and `del`.

use super::Ctx;
use crate::ctl::client::request_failed;
use crate::ctl::exit::Exit;
use crate::ctl::flags::Parsed;
use crate::ctl::ops;
use crate::ctl::printer::Format;

pub fn put(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let stdin = &mut *ctx.stdin;
    let req = ops::put_op(p, || {
        let mut v = Vec::new();
        stdin.read_to_end(&mut v).ok().map(|_| v)
    })?;
    let resp = ctx.global.connect()?.put(req).map_err(request_failed)?;
    let out = ctx.printer().put(&resp)?;
    ctx.emit(out);
    Ok(())
}

pub fn get(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let req = ops::get_op(p)?;
    let resp = ctx.global.connect()?.range(req).map_err(request_failed)?;
    let mut printer = ctx.printer();
    if p.bool("count-only") && printer.format != Format::Fields {
        return Err(Exit::bad_args(
            "--count-only is only for `--write-out=fields`",
        ));
    }
    if p.bool("print-value-only") {
        if printer.format != Format::Simple {
            return Err(Exit::bad_args(
                "print-value-only is only for `--write-out=simple`",
            ));
        }
        printer.value_only = true;
    }
    let out = printer.get(&resp)?;
    ctx.emit(out);
    Ok(())
}

pub fn del(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let req = ops::del_op(p)?;
    let resp = ctx
        .global
        .connect()?
        .delete_range(req)
        .map_err(request_failed)?;
    let out = ctx.printer().del(&resp)?;
    ctx.emit(out);
    Ok(())
}
