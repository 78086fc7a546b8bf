//! Helpers shared by the integration tests (included with `mod common`).

#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// glommio locks memory (ulimit -l is small): one executor at a time.
static GLOMMIO: Mutex<()> = Mutex::new(());

pub fn run<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let _guard = GLOMMIO.lock().unwrap_or_else(|e| e.into_inner());
    match glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .expect("spawn glommio executor")
        .join()
    {
        Ok(v) => v,
        Err(e) => panic!("glommio executor failed: {e}"),
    }
}

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    let prefix = format!("{seq:016x}-");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with(&prefix) && n.ends_with(".wal")
        })
        .expect("segment exists")
}
