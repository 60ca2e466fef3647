//! The deliverability figures as people and scripts read them: the terminal table, the JSON of
//! `stats --deliverability --json`, and the HTML section of the report (`section.html`, auto-escaped by
//! minijinja). Every number of the section is also in a `data-value`, the same as in the JSON.

use std::fmt::Write;

use minijinja::{Environment, context};
use serde_json::{Value, json};

use super::{
    BOUNCE_LINES, COMPLAINT_LINES, Lines, ListDeliverability, Verdict, Window, bounce_rate, complaint_rate, meaning,
};
use crate::stats::{iso, percent, round, thousands};
use crate::store::DomainCounts;

const TEMPLATE: &str = include_str!("section.html");

fn counts_json(c: &DomainCounts) -> serde_json::Map<String, Value> {
    let (complaints, complaint_verdict) = complaint_rate(c);
    let (bounces, bounce_verdict) = bounce_rate(c);
    let value = json!({
        "attempted": c.attempted(),
        "delivered": c.delivered,
        "bounced": c.bounced,
        "failed": c.failed,
        "ambiguous": c.ambiguous,
        "complained": c.complained,
        "opened_unverified": c.opened,
        "complaint_rate": complaints.map(|r| round(r, 6)),
        "complaint_verdict": complaint_verdict.as_str(),
        "bounce_rate": bounces.map(|r| round(r, 6)),
        "bounce_verdict": bounce_verdict.as_str(),
    });
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// `stats --deliverability --json`.
pub fn deliverability_json(window: &Window, lists: &[ListDeliverability]) -> Value {
    let share = |(parts, per): (i64, i64)| parts as f64 / per as f64;
    let lines = |l: Lines| json!({ "warning": share(l.warning), "critical": share(l.critical) });
    json!({
        "days": window.days,
        "since": iso(window.since),
        "until": iso(window.until),
        "thresholds": { "complaint_rate": lines(COMPLAINT_LINES), "bounce_rate": lines(BOUNCE_LINES) },
        "lists": lists.iter().map(|list| {
            let mut value = serde_json::Map::new();
            value.insert("list".to_owned(), json!(list.slug));
            value.extend(counts_json(&list.total));
            let providers: Vec<Value> = list.providers.iter().map(|(p, c)| {
                let mut row = serde_json::Map::new();
                row.insert("provider".to_owned(), json!(p.key));
                row.insert("domains".to_owned(), json!(p.domains));
                row.extend(counts_json(c));
                Value::Object(row)
            }).collect();
            value.insert("providers".to_owned(), Value::Array(providers));
            Value::Object(value)
        }).collect::<Vec<_>>(),
    })
}

/// A rate with enough places to read it against its lines: `0.125 %`.
fn shown(rate: Option<f64>, places: usize) -> String {
    rate.map_or("-".to_owned(), |r| format!("{:.places$} %", r * 100.0))
}

/// `stats --deliverability`: per list, the two rates with their verdicts, then the table of providers.
pub fn deliverability_text(window: &Window, lists: &[ListDeliverability]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "deliverability over the last {} days: messages first tried since {}",
        window.days,
        iso(window.since)
    );
    for list in lists {
        let t = &list.total;
        let (complaints, complaint_verdict) = complaint_rate(t);
        let (bounces, bounce_verdict) = bounce_rate(t);
        let _ = writeln!(out, "\n`{}`: {} messages tried", list.slug, thousands(t.attempted()));
        let _ = writeln!(
            out,
            "  complaint rate {:>9}  {} of {} delivered  {}: {}",
            shown(complaints, 3),
            thousands(t.complained),
            thousands(t.delivered),
            complaint_verdict.as_str().replace('_', " ").to_uppercase(),
            meaning("complaint", complaint_verdict)
        );
        let _ = writeln!(
            out,
            "  bounce rate    {:>9}  {} of {} tried  {}: {}",
            shown(bounces, 2),
            thousands(t.bounced),
            thousands(t.attempted()),
            bounce_verdict.as_str().replace('_', " ").to_uppercase(),
            meaning("bounce", bounce_verdict)
        );
        let _ = writeln!(
            out,
            "  {:<10} {:>9} {:>9} {:>7} {:>10} {:>7} {:>10} {:>8}",
            "PROVIDER", "TRIED", "DELIVERED", "BOUNCED", "COMPLAINED", "OPENED*", "COMPLAINTS", "BOUNCES"
        );
        for (provider, c) in &list.providers {
            let _ = writeln!(
                out,
                "  {:<10} {:>9} {:>9} {:>7} {:>10} {:>7} {:>10} {:>8}",
                provider.name,
                thousands(c.attempted()),
                thousands(c.delivered),
                thousands(c.bounced),
                thousands(c.complained),
                thousands(c.opened),
                shown(complaint_rate(c).0, 3).replace(' ', ""),
                shown(bounce_rate(c).0, 2).replace(' ', ""),
            );
        }
    }
    let _ = writeln!(
        out,
        "\n* opened: unverified (image prefetching inflates it). COMPLAINTS: complained out of delivered; \
         BOUNCES: hard bounces out of tried. Test sends never count."
    );
    out
}

/// The report's section about the list (HTML, already escaped).
pub fn deliverability_html(window: &Window, list: &ListDeliverability) -> anyhow::Result<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("deliverability.html", TEMPLATE)?;
    let rate_row = |key: &str, (rate, verdict): (Option<f64>, Verdict), part: i64, whole: i64, places: usize| {
        context! {
            key, value => rate.map(|r| round(r, 6)), shown => shown(rate, places), part => thousands(part),
            whole => thousands(whole), verdict => verdict.as_str(), meaning => meaning(key, verdict),
        }
    };
    let t = &list.total;
    let providers: Vec<minijinja::Value> = list
        .providers
        .iter()
        .map(|(p, c)| {
            context! {
                key => p.key, name => p.name, domains => p.domains.join(", "), attempted => c.attempted(),
                delivered => c.delivered, bounced => c.bounced, complained => c.complained, opened => c.opened,
                complaint_rate => shown(complaint_rate(c).0, 3), bounce_rate => shown(bounce_rate(c).0, 2),
                opened_share => percent(c.opened, c.delivered),
            }
        })
        .collect();
    Ok(env.get_template("deliverability.html")?.render(context! {
        days => window.days,
        since => iso(window.since),
        attempted => t.attempted(),
        complaint => rate_row("complaint", complaint_rate(t), t.complained, t.delivered, 3),
        bounce => rate_row("bounce", bounce_rate(t), t.bounced, t.attempted(), 2),
        providers,
    })?)
}
