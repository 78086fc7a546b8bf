//! `cairn-bench compare --plot OUT.svg|OUT.png`: one figure of two
//! charts, one line per run: latency by percentile (log scales: the x axis
//! in "nines", so 90 %, 99 %, 99.9 % are evenly spaced) and requests per
//! second over time.
//!
//! The format follows the file's extension. One drawing routine, generic
//! over plotters' backend, draws both: SVG through [`svg_text`] (text
//! sizes estimated, so no font is needed), PNG through the bitmap backend
//! with a system TrueType font ([`font`]). The legends are drawn here
//! rather than by plotters' series labels, which measure text with the
//! font directly and so would make SVGs need one too.

mod font;
mod svg_text;

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::runfile::{decode_histogram, RunFile};

/// Deepest percentile plotted: 99.999 %.
const NINES_MAX: f64 = 5.0;
const STEPS: usize = 200;
/// Width and height of the figure, pixels.
pub const FIGURE_PX: (u32, u32) = (1000, 900);
const TOP_CHART_PX: u32 = 470;
const CAPTION_PX: u32 = 22;
const LEGEND_TEXT_PX: u32 = 15;

/// An output format, from the file's extension.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format, String> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => Err(format!(
                "--plot {}: the file name must end in .svg or .png (the format follows it)",
                path.display()
            )),
        }
    }
}

/// One run's lines: latency (µs) by nines, and requests in each second.
struct Curve {
    name: String,
    latency: Vec<(f64, u64)>,
    latency_us_max: u64,
    tps: Vec<u64>,
    color: RGBAColor,
}

/// What both charts show, with the axes' ranges.
struct Figure {
    curves: Vec<Curve>,
    latency_us_max: u64,
    secs_max: u64,
    tps_max: u64,
}

/// `q` = 1 - 10^-nines.
fn quantile(nines: f64) -> f64 {
    1.0 - 10f64.powf(-nines)
}

/// `99.9%` for 3 nines: as many decimals as the nines need, no float noise.
fn percent_label(nines: f64) -> String {
    let decimals = (nines.ceil() - 2.0).max(0.0) as usize;
    format!("{:.*}%", decimals, 100.0 * quantile(nines))
}

impl Figure {
    fn of(runs: &[(String, RunFile)]) -> Result<Figure, String> {
        /// A run file's name without its directories and `.json`.
        fn legend_name(path: &str) -> String {
            let p = std::path::Path::new(path);
            match p.extension().and_then(|e| e.to_str()) {
                Some("json") => p.file_stem(),
                _ => p.file_name(),
            }
            .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
        }

        let mut curves = Vec::new();
        for (i, (name, r)) in runs.iter().enumerate() {
            let h = decode_histogram(&r.histogram_v2).map_err(|e| format!("{name}: {e}"))?;
            if h.is_empty() {
                continue;
            }
            let latency = (0..=STEPS)
                .map(|s| {
                    let nines = NINES_MAX * s as f64 / STEPS as f64;
                    (nines, h.value_at_quantile(quantile(nines)).max(1))
                })
                .collect();
            // The last second of a run is partial (the run ended inside
            // it): drawn, it would look like a collapse.
            let whole_secs = r.tps.len().saturating_sub(1).max(1).min(r.tps.len());
            curves.push(Curve {
                name: legend_name(name),
                latency,
                latency_us_max: h.max(),
                tps: r.tps[..whole_secs].to_vec(),
                color: Palette99::pick(i).to_rgba(),
            });
        }
        let latency_us_max = curves
            .iter()
            .map(|c| c.latency_us_max)
            .max()
            .unwrap_or(1)
            .max(1);
        let secs_max = curves.iter().map(|c| c.tps.len()).max().unwrap_or(1).max(1) as u64;
        let tps_max = curves
            .iter()
            .flat_map(|c| c.tps.iter().copied())
            .max()
            .unwrap_or(1)
            .max(1);
        Ok(Figure {
            curves,
            latency_us_max,
            secs_max,
            tps_max,
        })
    }
}

/// Draws `runs` into `out`, SVG or PNG after its extension.
pub fn plot(runs: &[(String, RunFile)], out: &Path) -> Result<(), String> {
    let format = Format::of(out)?;
    let figure = Figure::of(runs)?;
    let drawn = match format {
        Format::Svg => {
            let backend = svg_text::SvgNaiveText(SVGBackend::new(out, FIGURE_PX));
            draw(backend.into_drawing_area(), &figure)
        }
        Format::Png => {
            font::ensure_registered()?;
            draw(
                BitMapBackend::new(out, FIGURE_PX).into_drawing_area(),
                &figure,
            )
        }
    };
    drawn.map_err(|e| format!("plotting {}: {e}", out.display()))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The whole figure on any backend.
fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &Figure) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)?;
    let (top, bottom) = root.split_vertically(TOP_CHART_PX);
    draw_latency(&top, fig)?;
    draw_tps(&bottom, fig)?;
    root.present().map_err(err)
}

fn draw_latency<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
) -> Result<(), String> {
    let mut chart = ChartBuilder::on(area)
        .caption("Latency by percentile", (font::FAMILY, CAPTION_PX))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..NINES_MAX, (1u64..fig.latency_us_max * 2).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(6)
        .x_label_formatter(&|n| percent_label(*n))
        .draw()
        .map_err(err)?;
    for c in &fig.curves {
        let line = LineSeries::new(c.latency.iter().copied(), c.color.stroke_width(2));
        chart.draw_series(line).map_err(err)?;
    }
    draw_legend(
        &chart.plotting_area().strip_coord_spec(),
        fig,
        Corner::UpperLeft,
    )
}

fn draw_tps<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, fig: &Figure) -> Result<(), String> {
    let y_max = fig.tps_max + fig.tps_max / 10 + 1;
    let mut chart = ChartBuilder::on(area)
        .caption("Requests per second over time", (font::FAMILY, CAPTION_PX))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0u64..fig.secs_max, 0u64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("requests/s")
        .draw()
        .map_err(err)?;
    for c in &fig.curves {
        let pts = c.tps.iter().enumerate().map(|(s, &n)| (s as u64, n));
        chart
            .draw_series(LineSeries::new(pts, c.color.stroke_width(2)))
            .map_err(err)?;
    }
    draw_legend(
        &chart.plotting_area().strip_coord_spec(),
        fig,
        Corner::LowerRight,
    )
}

#[derive(Copy, Clone)]
enum Corner {
    UpperLeft,
    LowerRight,
}

/// A boxed legend in a corner of `area`: a line sample and the run's name
/// per run, text sized through the backend.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    fig: &Figure,
    corner: Corner,
) -> Result<(), String> {
    const INSET: i32 = 10;
    const PAD: i32 = 6;
    const SAMPLE: i32 = 22;
    if fig.curves.is_empty() {
        return Ok(());
    }
    let style = TextStyle::from((font::FAMILY, LEGEND_TEXT_PX).into_font())
        .pos(Pos::new(HPos::Left, VPos::Center));
    let mut text_w = 0;
    let mut row_h = LEGEND_TEXT_PX as i32;
    for c in &fig.curves {
        let (w, h) = area.estimate_text_size(&c.name, &style).map_err(err)?;
        text_w = text_w.max(w as i32);
        row_h = row_h.max(h as i32 + 4);
    }
    let box_w = PAD + SAMPLE + PAD + text_w + PAD;
    let box_h = PAD + row_h * fig.curves.len() as i32 + PAD;
    let (area_w, area_h) = area.dim_in_pixel();
    let (x0, y0) = match corner {
        Corner::UpperLeft => (INSET, INSET),
        Corner::LowerRight => (area_w as i32 - INSET - box_w, area_h as i32 - INSET - box_h),
    };
    let frame = [(x0, y0), (x0 + box_w, y0 + box_h)];
    area.draw(&Rectangle::new(frame, WHITE.mix(0.8).filled()))
        .map_err(err)?;
    area.draw(&Rectangle::new(frame, BLACK)).map_err(err)?;
    for (i, c) in fig.curves.iter().enumerate() {
        let y = y0 + PAD + row_h * i as i32 + row_h / 2;
        let sample = vec![(x0 + PAD, y), (x0 + PAD + SAMPLE, y)];
        area.draw(&PathElement::new(sample, c.color.stroke_width(2)))
            .map_err(err)?;
        let at = (x0 + PAD + SAMPLE + PAD, y);
        area.draw(&Text::new(c.name.as_str(), at, style.clone()))
            .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::recorder::Recorder;
    use crate::bench::runfile::Fingerprint;
    use std::time::Duration;

    fn runs() -> Vec<(String, RunFile)> {
        (1..=2u64)
            .map(|k| {
                let mut r = Recorder::new();
                for us in 1..=1000u64 {
                    r.record_ok(Duration::from_micros(us * k));
                }
                let s = r#"{"workload":"put","driver":"native","clients":1,"ops_per_sec":1}"#;
                (
                    format!("run-{k}"),
                    RunFile::new(s, &r, Fingerprint::default()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn a_plot_has_both_charts_and_a_legend_line_per_run() {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let out = dir.path().join("p.svg");
        plot(&runs(), &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        for text in [
            "Latency by percentile",
            "Requests per second over time",
            "run-1",
            "run-2",
            "latency (µs)",
            "99.9%",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    #[test]
    fn a_png_plot_is_a_png_of_the_figure_size() {
        let Some(font) = font::find_system_font() else {
            println!("skipped: no TrueType font on this machine (PNG output needs one)");
            return;
        };
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let out = dir.path().join("p.PNG");
        plot(&runs(), &out).unwrap_or_else(|e| panic!("with {}: {e}", font.display()));
        let png = std::fs::read(&out).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&png[12..16], b"IHDR");
        let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
        assert_eq!((be(&png[16..20]), be(&png[20..24])), FIGURE_PX);
    }

    #[test]
    fn percentile_labels_have_just_the_decimals_of_their_nines() {
        let labels: Vec<String> = (0..=5).map(|n| percent_label(n as f64)).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }

    #[test]
    fn the_format_follows_the_extension_and_others_are_refused() {
        assert_eq!(Format::of(Path::new("a/b.svg")), Ok(Format::Svg));
        assert_eq!(Format::of(Path::new("b.Png")), Ok(Format::Png));
        for bad in ["b.jpg", "b", "b.svg.gz"] {
            let e = Format::of(Path::new(bad)).unwrap_err();
            assert!(e.contains(".svg or .png"), "{e}");
        }
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let out = dir.path().join("p.pdf");
        assert!(plot(&runs(), &out).is_err());
        assert!(!out.exists(), "nothing written for a refused format");
    }
}
