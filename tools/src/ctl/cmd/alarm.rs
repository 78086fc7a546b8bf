//! `alarm list` and `alarm disarm`, as etcdctl 3.4 prints them:
//! `memberID:<id> alarm:NOSPACE ` (Go's compact text form of the member,
//! trailing space included), or `{"alarms":[{"memberID":..,"alarm":1}]}`.

use cairn_schemas::rpc;

use super::Ctx;
use crate::ctl::client::request_failed;
use crate::ctl::exit::Exit;
use crate::ctl::flags::Parsed;
use crate::ctl::json;
use crate::ctl::printer::Format;

fn name(a: rpc::AlarmType) -> &'static str {
    match a {
        rpc::AlarmType::NoSpace => "NOSPACE",
        rpc::AlarmType::Corrupt => "CORRUPT",
        _ => "NONE",
    }
}

/// The response in the chosen format.
pub fn render(format: Format, alarms: &[rpc::AlarmMemberT]) -> Result<String, Exit> {
    match format {
        Format::Simple => Ok(alarms
            .iter()
            .map(|a| format!("memberID:{} alarm:{} \n", a.member_id, name(a.alarm)))
            .collect()),
        Format::Json => {
            let items: Vec<String> = alarms
                .iter()
                .map(|a| {
                    json::Obj::new()
                        .uint("memberID", a.member_id)
                        .int("alarm", a.alarm.0 as i64)
                        .finish()
                })
                .collect();
            let mut o = json::Obj::new();
            if !items.is_empty() {
                o.raw("alarms", &json::array(&items));
            }
            Ok(o.finish() + "\n")
        }
        Format::Table => Err(Exit::bad_feature("table not supported as output format")),
        Format::Fields => Err(Exit::bad_feature("fields not supported as output format")),
    }
}

fn print(ctx: &mut Ctx, alarms: &[rpc::AlarmMemberT]) -> Result<(), Exit> {
    let s = render(ctx.global.format, alarms)?;
    let _ = ctx.out.write_all(s.as_bytes());
    Ok(())
}

pub fn list(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    if !p.args.is_empty() {
        return Err(Exit::bad_args("alarm list takes no arguments"));
    }
    let r = ctx
        .global
        .connect()?
        .alarm(rpc::AlarmRequestT::default())
        .map_err(request_failed)?;
    print(ctx, &r.alarms.unwrap_or_default())
}

pub fn disarm(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    if !p.args.is_empty() {
        return Err(Exit::bad_args("alarm disarm takes no arguments"));
    }
    let req = rpc::AlarmRequestT {
        action: rpc::AlarmAction::Deactivate,
        ..Default::default()
    };
    let r = ctx.global.connect()?.alarm(req).map_err(request_failed)?;
    print(ctx, &r.alarms.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nospace() -> Vec<rpc::AlarmMemberT> {
        vec![rpc::AlarmMemberT {
            member_id: 10276657743932975437,
            alarm: rpc::AlarmType::NoSpace,
        }]
    }

    /// Captured from etcdctl 3.4.23 against an etcd past its quota.
    #[test]
    fn prints_like_etcdctl() {
        assert_eq!(
            render(Format::Simple, &nospace()).unwrap(),
            "memberID:10276657743932975437 alarm:NOSPACE \n"
        );
        assert_eq!(
            render(Format::Json, &nospace()).unwrap(),
            "{\"alarms\":[{\"memberID\":10276657743932975437,\"alarm\":1}]}\n"
        );
        assert_eq!(render(Format::Simple, &[]).unwrap(), "");
    }
}
