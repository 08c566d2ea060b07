//! What the benches that draw a plot share: where the file goes, and the pieces every plot
//! draws alike.

use std::fmt::Write as _;
use std::path::PathBuf;

/// `name` in the target directory, which is made if need be.
pub(crate) fn target_file(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&target).unwrap();
    target.join(name)
}

/// A line of steps through `(x0, x1, y)`: level from `x0` to `x1` at `y`.
pub(crate) fn steps(svg: &mut String, steps: impl Iterator<Item = (f64, f64, f64)>, colour: &str) {
    let mut points = String::new();
    for (x0, x1, y) in steps {
        let _ = write!(points, "{x0:.1},{y:.1} {x1:.1},{y:.1} ");
    }
    let _ = writeln!(
        svg,
        r#"<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>"#
    );
}

/// The legend's `k`th entry, `name` in `colour`, right of a plot area that ends at `x` and
/// starts at `top`.
pub(crate) fn legend(svg: &mut String, x: f64, top: f64, k: usize, colour: &str, name: &str) {
    let y = top + 20.0 + 20.0 * k as f64;
    let _ = writeln!(
        svg,
        r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{name}</text>"#,
        x + 15.0,
        x + 40.0,
        x + 46.0,
        y + 4.0
    );
}
