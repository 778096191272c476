//! Bar charts drawn on the server as SVG geometry (the templates only place it): the
//! analytics report's and the console's.

use serde::Serialize;

/// Height of the plotting area; bars sit on a baseline 20 px above the chart's bottom.
pub(crate) const PLOT_H: f64 = 160.0;

/// One bar.
#[derive(Debug, Serialize)]
pub(crate) struct Bar {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub label: String,
    pub value: u64,
}

/// Bars for `values` across `width` px, the tallest reaching the top of the plot.
pub(crate) fn bars(values: &[(String, u64)], width: u32) -> Vec<Bar> {
    let max = values.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let step = f64::from(width) / values.len().max(1) as f64;
    let gap = if step > 12.0 { 4.0 } else { 0.5 };
    values
        .iter()
        .enumerate()
        .map(|(i, (label, v))| {
            let h = PLOT_H * (*v as f64) / max;
            Bar {
                x: i as f64 * step + gap,
                y: 20.0 + PLOT_H - h,
                w: (step - 2.0 * gap).max(1.0),
                h,
                label: label.clone(),
                value: *v,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tallest_bar_fills_the_plot_and_zero_is_flat() {
        let b = bars(&[("a".into(), 0), ("b".into(), 5), ("c".into(), 10)], 300);
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].h, 0.0);
        assert_eq!(b[2].h, PLOT_H);
        assert_eq!(b[1].h, PLOT_H / 2.0);
        assert_eq!(b[2].y, 20.0);
        assert!(b[1].x > b[0].x && b[2].x > b[1].x);
    }
}
