//! Inline SVG bar charts for the report: columns over time and horizontal bars for shares.
//!
//! A chart is drawn in a fixed coordinate system (`viewBox`, 360 units wide, so that its text, sized in the
//! page's stylesheet, stays at least 12 px from a 375 px phone up) and scales to the width of its container;
//! colours come from the page's stylesheet (light, dark and print). Every bar carries its number as
//! `data-value` and in a `<title>` (a tooltip); the drawing itself is hidden from screen readers, which read
//! the same numbers in a visually hidden table (`table`) placed after it. Trend lines (`sparkline`) are small
//! lines over the last issues. All text is escaped here, although only numbers and our own labels reach it.

use std::fmt::Write;

/// The drawing's width in `viewBox` units.
const WIDTH: f64 = 360.0;

/// One bar: what it stands for and its count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub label: String,
    pub value: i64,
}

/// Columns side by side (time runs left to right), with a count axis on the left and `ticks` (bar index,
/// label) under the bars, drawn over at least `slots` places (so a single bucket is a column, not the whole
/// width). `title` names the chart.
pub fn columns(id: &str, title: &str, bars: &[Bar], ticks: &[(usize, String)], slots: usize) -> String {
    let (left, right, top, bottom, height) = (40.0, 10.0, 14.0, 30.0, 200.0);
    let plot_w = WIDTH - left - right;
    let plot_h = height - top - bottom;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0);
    let top_value = nice_ceiling(max);
    let mut svg = open_svg(id, title, height);
    for tick in axis_ticks(top_value) {
        let y = top + plot_h - plot_h * tick as f64 / top_value as f64;
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{left}" x2="{x2}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{tx}" y="{ty:.1}" text-anchor="end">{tick}</text>"#,
            x2 = WIDTH - right,
            tx = left - 6.0,
            ty = y + 4.0
        );
    }
    let slots = bars.len().max(slots).max(1);
    let slot = plot_w / slots as f64;
    let gap = if slot > 4.0 { slot * 0.15 } else { 0.0 };
    for (index, bar) in bars.iter().enumerate() {
        let h = plot_h * bar.value as f64 / top_value as f64;
        let x = left + slot * index as f64 + gap / 2.0;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{h:.2}" data-label="{label}" data-value="{value}"><title>{label}: {value}</title></rect>"#,
            y = top + plot_h - h,
            w = slot - gap,
            label = escape(&bar.label),
            value = bar.value
        );
    }
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{left}" x2="{x2}" y1="{y}" y2="{y}"/>"#,
        x2 = WIDTH - right,
        y = top + plot_h
    );
    // Every other label is minor: a phone's stylesheet hides those, so that the larger text does not collide.
    for (position, (index, label)) in ticks.iter().enumerate() {
        let class = if position % 2 == 1 { "tick minor" } else { "tick" };
        let x = left + slot * (*index as f64);
        let anchor = if *index == 0 {
            "start"
        } else if *index >= slots {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            svg,
            r#"<line class="axis" x1="{x:.2}" x2="{x:.2}" y1="{y1}" y2="{y2}"/><text class="{class}" x="{x:.2}" y="{ty}" text-anchor="{anchor}">{label}</text>"#,
            y1 = top + plot_h,
            y2 = top + plot_h + 4.0,
            ty = top + plot_h + 18.0,
            label = escape(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars, one row each: the label, the bar (its length proportional to the largest), the count and
/// its share of `whole`.
pub fn rows(id: &str, title: &str, bars: &[Bar], whole: i64) -> String {
    let (label_w, value_w, row_h, pad) = (52.0, 112.0, 30.0, 6.0);
    let height = row_h * bars.len() as f64 + pad * 2.0;
    let plot_w = WIDTH - label_w - value_w;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let mut svg = open_svg(id, title, height);
    for (index, bar) in bars.iter().enumerate() {
        let y = pad + row_h * index as f64;
        let w = plot_w * bar.value as f64 / max as f64;
        let share =
            if whole > 0 { format!("{:.1} %", bar.value as f64 * 100.0 / whole as f64) } else { "-".to_owned() };
        let _ = write!(
            svg,
            r#"<text class="label" x="{lx}" y="{ty:.1}" text-anchor="end">{label}</text><rect class="track" x="{label_w}" y="{by:.1}" width="{plot_w}" height="{bh}"/><rect class="bar" x="{label_w}" y="{by:.1}" width="{w:.2}" height="{bh}" data-label="{label}" data-value="{value}"><title>{label}: {value} ({share})</title></rect><text class="value" x="{vx}" y="{ty:.1}">{value} · {share}</text>"#,
            lx = label_w - 8.0,
            ty = y + row_h / 2.0 + 4.0,
            by = y + 5.0,
            bh = row_h - 10.0,
            vx = label_w + plot_w + 8.0,
            label = escape(&bar.label),
            value = bar.value
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The numbers of a chart as a table that only screen readers see (in a box of one pixel: a table cannot be
/// made that small itself): a caption, a header row and one row per bar, each count in a `data-value`.
pub fn table(id: &str, caption: &str, head: (&str, &str), bars: &[Bar]) -> String {
    let mut out = format!(
        r#"<div class="visually-hidden"><table data-table="{id}"><caption>{caption}</caption><tr><th scope="col">{}</th><th scope="col">{}</th></tr>"#,
        escape(head.0),
        escape(head.1),
        id = escape(id),
        caption = escape(caption)
    );
    for bar in bars {
        let _ = write!(
            out,
            r#"<tr><th scope="row">{}</th><td data-value="{value}">{value}</td></tr>"#,
            escape(&bar.label),
            value = bar.value
        );
    }
    out.push_str("</table></div>");
    out
}

/// A small trend line over `values` (oldest first; `None` leaves a gap), with the `median` as a dashed line and
/// the last point marked. Decorative: the numbers are in a table beside it.
pub fn sparkline(values: &[Option<f64>], median: Option<f64>) -> String {
    let (w, h, pad) = (120.0, 32.0, 4.0);
    let known = values.iter().flatten().chain(median.iter());
    let (low, high) = known.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = if high > low { high - low } else { 1.0 };
    let step = (w - 2.0 * pad) / (values.len().max(2) - 1) as f64;
    let y = |v: f64| if high > low { pad + (h - 2.0 * pad) * (high - v) / span } else { h / 2.0 };
    let mut svg = format!(r#"<svg class="spark" viewBox="0 0 {w} {h}" aria-hidden="true" focusable="false">"#);
    if let Some(m) = median.filter(|_| low.is_finite()) {
        let _ = write!(
            svg,
            r#"<line class="median" x1="{pad}" x2="{x2}" y1="{y:.1}" y2="{y:.1}"/>"#,
            x2 = w - pad,
            y = y(m)
        );
    }
    let mut path = String::new();
    let mut pen_down = false;
    for (index, value) in values.iter().enumerate() {
        let x = pad + step * index as f64;
        match value {
            Some(v) => {
                let _ = write!(path, "{}{x:.1},{:.1} ", if pen_down { "L" } else { "M" }, y(*v));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if !path.is_empty() {
        let _ = write!(svg, r#"<path class="trend" d="{}"/>"#, path.trim_end());
    }
    if let Some(Some(last)) = values.last() {
        let _ = write!(
            svg,
            r#"<circle class="now" cx="{:.1}" cy="{:.1}" r="3"/>"#,
            pad + step * (values.len() - 1) as f64,
            y(*last)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn open_svg(id: &str, title: &str, height: f64) -> String {
    format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height}" aria-hidden="true" focusable="false" data-chart-id="{id}"><title>{title}</title>"#,
        id = escape(id),
        title = escape(title)
    )
}

/// The smallest of 1, 2, 5, 10, 20, 50... at or above `max`: the top of the count axis.
fn nice_ceiling(max: i64) -> i64 {
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            let value = step.saturating_mul(m);
            if value >= max || value == i64::MAX {
                return value.max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// The counts labelled on the axis: 0, the middle when it is a whole number, and the top.
fn axis_ticks(top: i64) -> Vec<i64> {
    if top >= 2 && top % 2 == 0 { vec![0, top / 2, top] } else { vec![0, top] }
}

/// Text for SVG or HTML, with the five special characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(values: &[i64]) -> Vec<Bar> {
        values.iter().enumerate().map(|(i, v)| Bar { label: format!("bar {i}"), value: *v }).collect()
    }

    #[test]
    fn the_count_axis_ends_at_a_round_number() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(999_001), 1_000_000);
        assert_eq!(axis_ticks(10), vec![0, 5, 10]);
        assert_eq!(axis_ticks(5), vec![0, 5]);
    }

    #[test]
    fn every_bar_carries_its_value_and_the_tallest_fills_the_plot() {
        let svg = columns("c", "A chart", &bars(&[0, 5, 10]), &[(0, "start".to_owned())], 1);
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 3);
        for value in [0, 5, 10] {
            assert!(svg.contains(&format!("data-value=\"{value}\"")), "{svg}");
        }
        assert!(svg.contains("height=\"156.00\" data-label=\"bar 2\""), "{svg}");
        assert!(svg.contains(">start</text>"));
    }

    #[test]
    fn one_bucket_is_drawn_as_one_narrow_column_over_the_slots_asked_for() {
        let svg = columns("c", "A chart", &bars(&[7]), &[], 12);
        // 310 units of plot over 12 places, less the gap: a column about 22 units wide, not 310.
        assert!(svg.contains("width=\"21.96\""), "{svg}");
    }

    #[test]
    fn a_hidden_table_has_every_number_and_a_trend_line_has_gaps_for_missing_values() {
        let html = table("t", "Votes", ("Stars", "Votes"), &bars(&[3, 0]));
        assert!(
            html.starts_with(r#"<div class="visually-hidden"><table"#) && html.contains("<caption>Votes</caption>")
        );
        assert!(html.contains(r#"<th scope="row">bar 0</th><td data-value="3">3</td>"#), "{html}");
        let spark = sparkline(&[Some(1.0), None, Some(2.0), Some(3.0)], Some(2.0));
        assert_eq!(spark.matches('M').count(), 2, "{spark}");
        assert!(spark.contains("class=\"median\"") && spark.contains("<circle"), "{spark}");
        assert!(!sparkline(&[None, None], None).contains("<path"));
    }

    #[test]
    fn labels_are_escaped() {
        let svg = rows("r", "<script>", &[Bar { label: "a\"<b>&".to_owned(), value: 1 }], 1);
        assert!(!svg.contains("<script>") && !svg.contains("<b>"));
        assert!(svg.contains("a&quot;&lt;b&gt;&amp;"));
    }
}
