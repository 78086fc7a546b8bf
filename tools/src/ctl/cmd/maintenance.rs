//! `defrag` and `snapshot save`: maintenance that talks to a running member.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Ctx;
use crate::ctl::client::error_text;
use crate::ctl::exit::{Exit, ERROR};
use crate::ctl::flags::Parsed;

/// Defragmentation and snapshots of a large member take a while: allow at
/// least this long whatever `--command-timeout` says (etcdctl users hit
/// its 5 s default on big members).
const LONG_TIMEOUT: Duration = Duration::from_secs(600);

fn long_global(ctx: &Ctx) -> crate::ctl::client::Global {
    let mut g = ctx.global.clone();
    g.command_timeout = g.command_timeout.max(LONG_TIMEOUT);
    g
}

/// `defrag`: defragments each endpoint's page file, as etcdctl does.
pub fn defrag(ctx: &mut Ctx, _p: &Parsed) -> Result<(), Exit> {
    let g = long_global(ctx);
    let mut failed = false;
    for ep in &g.endpoints {
        let r = g.connect_to(ep).and_then(|c| c.defragment());
        match r {
            Ok(_) => {
                let _ = writeln!(ctx.out, "Finished defragmenting etcd member[{ep}]");
            }
            Err(e) => {
                failed = true;
                let _ = writeln!(
                    ctx.err,
                    "Failed to defragment etcd member[{ep}] ({})",
                    error_text(&e)
                );
            }
        }
    }
    if failed {
        return Err(Exit::Code(ERROR));
    }
    Ok(())
}

/// `snapshot save FILE`: pulls a snapshot from one endpoint into FILE.
pub fn snapshot_save(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    if p.args.len() != 1 {
        return Err(Exit::bad_args("snapshot save expects one argument"));
    }
    let g = long_global(ctx);
    if g.endpoints.len() != 1 {
        return Err(Exit::bad_args(format!(
            "snapshot must be requested to one selected node, not multiple {:?}",
            g.endpoints
        )));
    }
    let dest = PathBuf::from(&p.args[0]);
    let part = part_path(&dest);
    let started = Instant::now();
    let result = fetch(&g, &part, ctx.err);
    let size = match result {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(Exit::error(ERROR, e));
        }
    };
    if let Err(e) = cairn_storage::snapshot::check(&part) {
        let _ = std::fs::remove_file(&part);
        return Err(Exit::error(
            ERROR,
            format!("received snapshot is damaged: {e}"),
        ));
    }
    std::fs::rename(&part, &dest)
        .map_err(|e| Exit::error(ERROR, format!("could not rename {}: {e}", part.display())))?;
    let _ = writeln!(
        ctx.err,
        "fetched snapshot from {} ({size} bytes) in {:.1}s",
        g.endpoints[0],
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(ctx.out, "Snapshot saved at {}", dest.display());
    Ok(())
}

fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Downloads every chunk into `part` and syncs it; returns its size.
fn fetch(g: &crate::ctl::client::Global, part: &Path, err: &mut dyn Write) -> Result<u64, String> {
    let client = g.connect().map_err(|e| match e {
        Exit::Error { msg, .. } => msg,
        other => format!("{other:?}"),
    })?;
    let mut file = std::fs::File::create(part)
        .map_err(|e| format!("could not create {}: {e}", part.display()))?;
    let progress = std::io::stderr().is_terminal();
    let first = client.snapshot_chunk(0, 0).map_err(|e| error_text(&e))?;
    let (id, total) = (first.snapshot_id, first.total_bytes);
    let mut offset = 0u64;
    let mut chunk = first;
    loop {
        let data = chunk.data.unwrap_or_default();
        if chunk.offset != offset || (data.is_empty() && offset < total) {
            return Err(format!(
                "snapshot stream broke at offset {offset} (got offset {}, {} bytes)",
                chunk.offset,
                data.len()
            ));
        }
        file.write_all(&data)
            .map_err(|e| format!("writing {}: {e}", part.display()))?;
        offset += data.len() as u64;
        if progress {
            let _ = write!(err, "\r{} / {} bytes", offset, total);
        }
        if offset >= total {
            break;
        }
        chunk = client
            .snapshot_chunk(id, offset)
            .map_err(|e| error_text(&e))?;
    }
    if progress {
        let _ = writeln!(err);
    }
    file.sync_all()
        .map_err(|e| format!("syncing {}: {e}", part.display()))?;
    Ok(total)
}
