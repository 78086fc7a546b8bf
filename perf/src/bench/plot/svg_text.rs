//! The SVG backend with text sizes estimated rather than measured, so that
//! an SVG needs no font installed.
//!
//! plotters built with `ab_glyph` (which PNG output needs) asks the
//! registered TrueType font for every text's size, even when drawing an
//! SVG, and fails without one. An SVG does not need it: the viewer lays
//! the text out with its own fonts, and the chart only needs a size to
//! reserve room. [`SvgNaiveText`] wraps `SVGBackend` and answers size
//! queries with plotters' own estimate for font-less builds (0.7 em per
//! character), so SVGs come out the same on every machine.

use plotters::backend::{DrawingBackend, SVGBackend};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

pub struct SvgNaiveText<'a>(pub SVGBackend<'a>);

type Result<T> = std::result::Result<T, DrawingErrorKind<std::io::Error>>;

/// plotters' `naive` font estimate of a text's (width, height) in pixels
/// (per character rather than per byte).
pub fn naive_text_size(text: &str, size: f64) -> (u32, u32) {
    let em = size / 1.24 / 1.24;
    let width = (em * 0.7 * text.chars().count() as f64).round();
    let height = (em * 1.24).round();
    (width as u32, height as u32)
}

impl DrawingBackend for SvgNaiveText<'_> {
    type ErrorType = std::io::Error;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<()> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<()> {
        self.0.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<()> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<()> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<()> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<()> {
        self.0.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<()> {
        self.0.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<()> {
        self.0.fill_polygon(vert, style)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<()> {
        self.0.draw_text(text, style, pos)
    }

    /// Unrotated, as plotters' own estimates are.
    fn estimate_text_size<S: BackendTextStyle>(&self, text: &str, style: &S) -> Result<(u32, u32)> {
        Ok(naive_text_size(text, style.size()))
    }
}
