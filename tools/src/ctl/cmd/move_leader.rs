//! `move-leader TARGET_ID`, as etcdctl 3.4's: ask each `--endpoints`
//! endpoint for its status in order until one reports itself leader (any
//! status error ends the command), send MoveLeader there, and print
//! `Leadership transferred from <leader> to <target>`.

use super::Ctx;
use crate::ctl::client::request_failed;
use crate::ctl::exit::Exit;
use crate::ctl::flags::Parsed;
use crate::ctl::gofmt;
use crate::ctl::printer::member as print;

pub fn run(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let [arg] = p.args.as_slice() else {
        return Err(Exit::bad_args("move-leader command needs 1 argument"));
    };
    let target = gofmt::parse_uint(arg, 16).map_err(Exit::bad_args)?;
    let endpoints = ctx.global.endpoints.clone();
    let mut leader = None;
    for ep in &endpoints {
        let client = ctx.global.connect_to(ep).map_err(request_failed)?;
        let status = client.status().map_err(request_failed)?;
        let member_id = status.header.as_ref().map_or(0, |h| h.member_id);
        if member_id != 0 && member_id == status.leader {
            leader = Some((client, status.leader));
            break;
        }
    }
    let Some((client, leader_id)) = leader else {
        return Err(Exit::bad_args(format!(
            "no leader endpoint given at [{}]",
            endpoints.join(" ")
        )));
    };
    let r = client.move_leader(target).map_err(request_failed)?;
    let out = print::move_leader(ctx.global.format, leader_id, target, &r)?;
    ctx.emit(out);
    Ok(())
}
