//! A TrueType font for PNG text, found on this machine at run time and
//! registered with plotters (ab_glyph) under the family the charts use.
//!
//! Looked for, in order: DejaVu Sans and Liberation Sans at the paths
//! Debian, Fedora and Arch install them to, then the first `*.ttf` under
//! `/usr/share/fonts` or `/usr/local/share/fonts` (a regular sans face if
//! there is one). Nothing is shipped with the tool.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::{register_font, FontStyle};

/// The font family every chart asks for.
pub const FAMILY: &str = "sans-serif";

const KNOWN: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
];
const SEARCHED: [&str; 2] = ["/usr/share/fonts", "/usr/local/share/fonts"];
/// Bounds of the directory walk: font trees are a few levels deep.
const WALK_DEPTH_MAX: usize = 6;
const WALK_ENTRIES_MAX: usize = 20_000;
/// Largest font file read (DejaVu Sans is 0.7 MB; CJK fonts reach 20 MB).
const FONT_BYTES_MAX: u64 = 64 << 20;

/// Registers a system TrueType font as [`FAMILY`] (once per process) and
/// returns its path, or says why there is none.
pub fn ensure_registered() -> Result<&'static Path, String> {
    static REGISTERED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let path = find_system_font().ok_or_else(|| {
                format!(
                    "PNG output needs a TrueType font and none was found ({} or any *.ttf under {}); \
                     install one (e.g. apt-get install fonts-dejavu-core) or write an .svg, which needs none",
                    KNOWN[0],
                    SEARCHED.join(" or ")
                )
            })?;
            register(&path)?;
            Ok(path)
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

fn register(path: &Path) -> Result<(), String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > FONT_BYTES_MAX {
        return Err(format!(
            "{}: {size} bytes is larger than a font this tool reads ({FONT_BYTES_MAX})",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // plotters keeps registered fonts for the life of the process and
    // wants them 'static: leaked once, guarded by the OnceLock.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font(FAMILY, FontStyle::Normal, bytes)
        .map_err(|_| format!("{}: not a TrueType font ab_glyph can read", path.display()))
}

/// The font [`ensure_registered`] would use.
pub fn find_system_font() -> Option<PathBuf> {
    if let Some(p) = KNOWN.iter().map(Path::new).find(|p| p.is_file()) {
        return Some(p.to_path_buf());
    }
    let mut found = Vec::new();
    for root in SEARCHED {
        collect_ttf(Path::new(root), 0, &mut found);
    }
    found.sort();
    found
        .iter()
        .find(|p| is_regular_sans(p))
        .or(found.first())
        .cloned()
}

/// Appends the `*.ttf` files under `dir` to `out`, within the walk bounds.
fn collect_ttf(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > WALK_DEPTH_MAX {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten().take(WALK_ENTRIES_MAX) {
        if out.len() >= WALK_ENTRIES_MAX {
            return;
        }
        let path = entry.path();
        if path.is_dir() {
            collect_ttf(&path, depth + 1, out);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("ttf"))
        {
            out.push(path);
        }
    }
}

/// A sans face without a style suffix (not bold, italic, mono, ...).
fn is_regular_sans(p: &Path) -> bool {
    let name = p
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let styled = [
        "bold",
        "italic",
        "oblique",
        "mono",
        "condensed",
        "light",
        "serif",
    ]
    .iter()
    .any(|s| name.replace("sans", "").contains(s));
    name.contains("sans") && !styled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_sans_faces_are_preferred() {
        assert!(is_regular_sans(Path::new("/f/DejaVuSans.ttf")));
        assert!(is_regular_sans(Path::new("/f/NotoSans-Regular.ttf")));
        assert!(!is_regular_sans(Path::new("/f/DejaVuSans-Bold.ttf")));
        assert!(!is_regular_sans(Path::new("/f/DejaVuSansMono.ttf")));
        assert!(!is_regular_sans(Path::new("/f/DejaVuSerif.ttf")));
        assert!(!is_regular_sans(Path::new("/f/FreeSerif.ttf")));
    }
}
