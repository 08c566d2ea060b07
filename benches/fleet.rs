//! The fleet simulation: 1000 clients, each with the real `RetryLayer`, against a modelled
//! server whose capacity drops to 30 % for 10 s, on tokio's paused clock. The model is
//! described in `tests/support/fleet.rs`; `tests/fleet.rs` runs a smaller fleet as a test.
//!
//! ```text
//! cargo bench --bench fleet --features grpc
//! ```
//!
//! It prints, per retry policy, how long after the trigger the goodput is back at 95 % for
//! good, and the attempts per request during the trigger and over the run; and writes the
//! goodput over time to `target/fleet-goodput.svg`. Each run is seeded: two runs print the
//! same numbers.

#![allow(missing_docs)]

#[path = "../tests/support/fleet.rs"]
mod fleet;
#[path = "support/svg.rs"]
mod svg;

use std::fmt::Write as _;

use fleet::{Params, Report, Variant, row, run_paused};

fn main() {
    // `cargo bench` passes `--bench`; anything else (a filter) runs nothing.
    if std::env::args().skip(1).any(|a| !a.starts_with("--")) {
        return;
    }
    let params = Params::fleet();
    println!(
        "{} clients, capacity {} attempts/s, load {:.0} %, attempt timeout {:?}; capacity at \
         {:.0} % from {:?} for {:?}; clients send for {:?}",
        params.clients,
        params.capacity,
        100.0 * params.load,
        params.attempt_timeout,
        100.0 * params.trigger_capacity,
        params.trigger_at,
        params.trigger_for,
        params.run_for,
    );
    println!();
    println!(
        "| variant | back at ≥ 95 % goodput after the trigger | attempts per request, trigger | \
         attempts per request, run | work wasted |"
    );
    println!("|---|---|---|---|---|");
    let mut reports = Vec::new();
    for variant in Variant::all() {
        let started = std::time::Instant::now();
        let report = run_paused(variant, &params);
        println!("{}", row(&report));
        eprintln!("  ({} ran in {:?})", variant.name(), started.elapsed());
        reports.push(report);
    }
    // What the outcome owes to the cost of turning an attempt away.
    println!();
    println!("back at ≥ 95 % goodput after the trigger, by what turning an attempt away costs:");
    println!();
    let costs = [0.0, 0.02, 0.05, 0.1, 0.2];
    let mut header = "| variant |".to_owned();
    for cost in costs {
        let _ = write!(header, " {:.0} % |", 100.0 * cost);
    }
    println!("{header}");
    println!("|---|{}", "---|".repeat(costs.len()));
    for variant in [
        Variant::GoRetryablehttp,
        Variant::TightLoop,
        Variant::Defaults,
        Variant::Unthrottled,
    ] {
        let mut line = format!("| {} |", variant.name());
        for reject_cost in costs {
            let params = Params {
                reject_cost,
                ..params.clone()
            };
            let report = run_paused(variant, &params);
            let _ = write!(line, " {} |", fleet::recovery(&report));
        }
        println!("{line}");
    }
    let path = svg::target_file("fleet-goodput.svg");
    std::fs::write(&path, plot(&reports)).unwrap();
    println!();
    println!("goodput over time: {}", path.display());
}

// The plot's size and margins.
const W: f64 = 900.0;
const H: f64 = 440.0;
const LEFT: f64 = 60.0;
const BOTTOM: f64 = 50.0;
const TOP: f64 = 40.0;
const RIGHT: f64 = 270.0;
/// The goodput shown at most: catching up after the trigger can go above 100 %.
const Y_MAX: f64 = 1.5;

/// The goodput of the degraded backend over time, one line per variant, the trigger
/// shaded.
fn plot(reports: &[Report]) -> String {
    let params = &reports[0].params;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let span = params.run_for.as_secs_f64();
    let x_of = |t: f64| LEFT + t / span * pw;
    let y_of = |g: f64| TOP + ph - g.min(Y_MAX) / Y_MAX * ph;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{:.1}" y="22" text-anchor="middle" font-size="14">Goodput of {} clients, capacity down to {:.0} % from {} s to {} s</text>
<rect x="{:.1}" y="{TOP}" width="{:.1}" height="{ph:.1}" fill="#f3e3e3"/>
<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>
<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="black"/>
"##,
        LEFT + pw / 2.0,
        params.clients,
        100.0 * params.trigger_capacity,
        params.trigger_at.as_secs(),
        (params.trigger_at + params.trigger_for).as_secs(),
        x_of(params.trigger_at.as_secs_f64()),
        x_of(params.trigger_for.as_secs_f64()) - LEFT,
        TOP + ph,
        LEFT + pw,
        TOP + ph,
        TOP + ph,
    );
    for t in (0..=params.run_for.as_secs()).step_by(10) {
        let x = x_of(t as f64);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{t}</text>"##,
            TOP + ph,
            TOP + ph + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time, s</text>"#,
        LEFT + pw / 2.0,
        H - 12.0
    );
    for g in [0.0, 0.5, 0.95, 1.0, 1.5] {
        let y = y_of(g);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{:.0} %</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            100.0 * g
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="16" y="{:.1}" transform="rotate(-90 16 {:.1})" text-anchor="middle">requests back successful ÷ requests sent</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    let colours = [
        "#7d7d7d", "#d35400", "#c0392b", "#2471a3", "#1e8449", "#8e44ad", "#b7950b",
    ];
    let bucket = params.bucket.as_secs_f64();
    for (k, report) in reports.iter().enumerate() {
        let colour = colours[k % colours.len()];
        let goodput = report.goodput(Report::DEGRADED);
        let buckets = goodput.iter().enumerate().map(|(i, g)| {
            let (x0, x1) = (x_of(i as f64 * bucket), x_of((i + 1) as f64 * bucket));
            (x0, x1, y_of(*g))
        });
        svg::steps(&mut svg, buckets, colour);
        svg::legend(&mut svg, LEFT + pw, TOP, k, colour, report.variant.name());
    }
    svg.push_str("</svg>\n");
    svg
}
