//! `cairn-bench compare --plot OUT.svg`: one figure of two charts, one line
//! per run: latency by percentile (log scales: the x axis in "nines", so
//! 90 %, 99 %, 99.9 % are evenly spaced) and requests per second over time.

use std::path::Path;

use plotters::prelude::*;

use super::runfile::{decode_histogram, RunFile};

/// Deepest percentile plotted: 99.999 %.
const NINES_MAX: f64 = 5.0;
const STEPS: usize = 200;

/// `q` = 1 - 10^-nines.
fn quantile(nines: f64) -> f64 {
    1.0 - 10f64.powf(-nines)
}

/// Draws `runs` into an SVG at `out`.
pub fn plot(runs: &[(String, RunFile)], out: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("plotting {}: {e}", out.display());
    let mut curves = Vec::new();
    let mut lat_max = 1u64;
    for (name, r) in runs {
        let h = decode_histogram(&r.histogram_v2).map_err(|e| format!("{name}: {e}"))?;
        if h.is_empty() {
            continue;
        }
        let pts: Vec<(f64, u64)> = (0..=STEPS)
            .map(|i| {
                let nines = NINES_MAX * i as f64 / STEPS as f64;
                (nines, h.value_at_quantile(quantile(nines)).max(1))
            })
            .collect();
        lat_max = lat_max.max(h.max());
        curves.push((name.clone(), pts, r.tps.clone()));
    }
    let secs_max = curves.iter().map(|c| c.2.len()).max().unwrap_or(1).max(1) as u64;
    let tps_max = curves
        .iter()
        .flat_map(|c| c.2.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    let root = SVGBackend::new(out, (1000, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(470);
    let mut lat = ChartBuilder::on(&top)
        .caption("Latency by percentile", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..NINES_MAX, (1u64..lat_max * 2).log_scale())
        .map_err(|e| err(&e))?;
    lat.configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(6)
        .x_label_formatter(&|n| format!("{}%", 100.0 * quantile(*n)))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (name, pts, _)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        lat.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    lat.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    let mut tps = ChartBuilder::on(&bottom)
        .caption("Requests per second over time", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0u64..secs_max, 0u64..tps_max + tps_max / 10 + 1)
        .map_err(|e| err(&e))?;
    tps.configure_mesh()
        .x_desc("time (s)")
        .y_desc("requests/s")
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (name, _, series)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts = series.iter().enumerate().map(|(s, &n)| (s as u64, n));
        tps.draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    tps.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::recorder::Recorder;
    use crate::bench::runfile::Fingerprint;
    use std::time::Duration;

    #[test]
    fn a_plot_has_both_charts_and_a_legend_line_per_run() {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let runs: Vec<(String, RunFile)> = (1..=2u64)
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
            .collect();
        let out = dir.path().join("p.svg");
        plot(&runs, &out).unwrap();
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
}
