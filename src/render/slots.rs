//! Per-recipient slots: the placeholders templates are rendered with, and the split of a rendered email into
//! literal text and slots.
//!
//! A template never sees subscriber data. It is rendered once with a marker in place of each per-recipient
//! value (`tidingsslot_unsubscribe_`); markers are lowercase letters and underscores, which minijinja, mrml and
//! HTML leave untouched in text and in attributes alike. The result is then split at the markers, once, into
//! [`Segment`]s. Pairs of markers delimit optional regions, kept only when the recipient has a name, an
//! open-tracking pixel, or reads the copy in a given place and standing (the email itself, or its web version as
//! a subscriber, one who left, or the public), so templates own every word and tag ("Hello Ana," vs "Hello,").
//! This file owns the marker format and the checks that every marker was understood and every required slot is
//! placed.

use minijinja::Value;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::error::RenderError;

/// Every marker starts with this. It may not appear in content, so a literal can never hold a stray marker.
pub(crate) const RESERVED: &str = "tidingsslot";

/// A per-recipient value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Slot {
    Name,
    UnsubscribeUrl,
    ViewUrl,
    Rate1Url,
    Rate2Url,
    Rate3Url,
    Rate4Url,
    Rate5Url,
    PixelUrl,
    ConfirmUrl,
    /// The rating tally ("4.6/5 (23 votes)"), shown on the public web version only.
    Tally,
}

pub(crate) const SLOT_COUNT: usize = 11;

pub(crate) const RATE_SLOTS: [Slot; 5] =
    [Slot::Rate1Url, Slot::Rate2Url, Slot::Rate3Url, Slot::Rate4Url, Slot::Rate5Url];

impl Slot {
    const ALL: [Slot; SLOT_COUNT] = [
        Slot::Name,
        Slot::UnsubscribeUrl,
        Slot::ViewUrl,
        Slot::Rate1Url,
        Slot::Rate2Url,
        Slot::Rate3Url,
        Slot::Rate4Url,
        Slot::Rate5Url,
        Slot::PixelUrl,
        Slot::ConfirmUrl,
        Slot::Tally,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    fn code(self) -> &'static str {
        match self {
            Slot::Name => "name",
            Slot::UnsubscribeUrl => "unsubscribe",
            Slot::ViewUrl => "view",
            Slot::Rate1Url => "rateone",
            Slot::Rate2Url => "ratetwo",
            Slot::Rate3Url => "ratethree",
            Slot::Rate4Url => "ratefour",
            Slot::Rate5Url => "ratefive",
            Slot::PixelUrl => "pixel",
            Slot::ConfirmUrl => "confirm",
            Slot::Tally => "tally",
        }
    }
}

/// What an optional region depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Condition {
    /// The recipient's name is not empty.
    HasName,
    /// Open tracking is on for this recipient.
    HasPixel,
    /// The copy is the email itself, not its web version ("View in your browser" makes sense).
    InEmail,
    /// The reader receives the list: the email itself, or the web version of an active subscriber.
    Subscribed,
    /// The web version read by a subscriber whose subscription awaits confirmation.
    Pending,
    /// The web version read by a subscriber who has unsubscribed.
    Unsubscribed,
    /// The web version read by a subscriber whose address bounced.
    Bounced,
    /// The web version read by a subscriber who marked a message as spam.
    Complained,
    /// The public web version (`/issues/N`), personalised for nobody.
    Public,
}

impl Condition {
    const ALL: [Condition; 9] = [
        Condition::HasName,
        Condition::HasPixel,
        Condition::InEmail,
        Condition::Subscribed,
        Condition::Pending,
        Condition::Unsubscribed,
        Condition::Bounced,
        Condition::Complained,
        Condition::Public,
    ];

    fn code(self) -> &'static str {
        match self {
            Condition::HasName => "ifname",
            Condition::HasPixel => "ifpixel",
            Condition::InEmail => "ifemail",
            Condition::Subscribed => "ifsubscribed",
            Condition::Pending => "ifpending",
            Condition::Unsubscribed => "ifunsubscribed",
            Condition::Bounced => "ifbounced",
            Condition::Complained => "ifcomplained",
            Condition::Public => "ifpublic",
        }
    }

    /// The name a template author uses: `if_name` for `ifname`.
    fn template_name(self) -> String {
        format!("if_{}", &self.code()[2..])
    }
}

/// A piece of a compiled email part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Segment {
    Literal(String),
    Slot(Slot),
    /// Segments written only when the condition holds. Regions do not nest.
    When(Condition, Vec<Segment>),
}

fn marker(code: &str) -> String {
    format!("{RESERVED}_{code}_")
}

/// The `slots` variable every template gets: a marker for each value, `if_X`/`end_if_X` around optional
/// regions (`if_name`, `if_pixel`, `if_email`, `if_subscribed`, `if_pending`, `if_unsubscribed`, `if_bounced`,
/// `if_complained`, `if_public`), and `rate_urls`, the five star links in order.
pub(crate) fn slots_context() -> Value {
    let slot = |slot: Slot| Value::from_safe_string(marker(slot.code()));
    let values = context! {
        name => slot(Slot::Name),
        unsubscribe_url => slot(Slot::UnsubscribeUrl),
        view_url => slot(Slot::ViewUrl),
        rate_urls => RATE_SLOTS.map(slot).to_vec(),
        pixel_url => slot(Slot::PixelUrl),
        confirm_url => slot(Slot::ConfirmUrl),
        tally => slot(Slot::Tally),
    };
    let mut regions = std::collections::BTreeMap::new();
    for condition in Condition::ALL {
        let name = condition.template_name();
        regions.insert(format!("end_{name}"), Value::from_safe_string(marker(&format!("end{}", condition.code()))));
        regions.insert(name, Value::from_safe_string(marker(condition.code())));
    }
    context! { ..values, ..Value::from(regions) }
}

enum Marker {
    Slot(Slot),
    Begin(Condition),
    End(Condition),
}

fn parse_marker(after_prefix: &str) -> Option<(Marker, usize)> {
    let code = after_prefix.strip_prefix('_')?;
    let code = &code[..code.find('_')?];
    let length = code.len() + 2;
    let marker = if let Some(slot) = Slot::ALL.into_iter().find(|slot| slot.code() == code) {
        Marker::Slot(slot)
    } else if let Some(condition) = Condition::ALL.into_iter().find(|c| c.code() == code) {
        Marker::Begin(condition)
    } else {
        let condition = code.strip_prefix("end")?;
        Marker::End(Condition::ALL.into_iter().find(|c| c.code() == condition)?)
    };
    Some((marker, length))
}

/// What a template must and may contain.
pub(crate) struct SlotRules<'a> {
    /// The template's name, for messages.
    pub template: &'a str,
    /// Slots that must appear at least once.
    pub required: &'a [Slot],
    /// Slots that may appear; any other is an error (a confirmation email has no unsubscribe link to fill).
    pub allowed: &'a [Slot],
}

/// Splits a rendered part at the markers. Fails when a marker is unknown or mangled, a region is unbalanced
/// or nested, a slot is not allowed, or a required slot is missing.
pub(crate) fn split(rendered: &str, rules: &SlotRules<'_>) -> Result<Vec<Segment>, RenderError> {
    let error = |message: String| RenderError::Slots { template: rules.template.to_owned(), message };
    let mut top: Vec<Segment> = Vec::new();
    let mut region: Option<(Condition, Vec<Segment>)> = None;
    let mut seen = [false; SLOT_COUNT];
    let mut rest = rendered;
    while let Some(at) = rest.find(RESERVED) {
        let segments = region.as_mut().map_or(&mut top, |(_, segments)| segments);
        if at > 0 {
            segments.push(Segment::Literal(rest[..at].to_owned()));
        }
        let after = &rest[at + RESERVED.len()..];
        let Some((marker, length)) = parse_marker(after) else {
            let shown: String = after.chars().take(20).collect();
            return Err(error(format!("an unknown or damaged placeholder `{RESERVED}{shown}`")));
        };
        match marker {
            Marker::Slot(slot) if rules.allowed.contains(&slot) => {
                seen[slot.index()] = true;
                segments.push(Segment::Slot(slot));
            }
            Marker::Slot(slot) => return Err(error(format!("`slots.{}` is not available here", slot.code()))),
            Marker::Begin(condition) if region.is_none() => region = Some((condition, Vec::new())),
            Marker::End(condition) if region.as_ref().is_some_and(|(open, _)| *open == condition) => {
                let (condition, segments) = region.take().expect("checked just above");
                top.push(Segment::When(condition, segments));
            }
            Marker::Begin(_) | Marker::End(_) => {
                return Err(error("optional regions (`if_name`, `if_email`...) must be closed and not nested".into()));
            }
        }
        rest = &after[length..];
    }
    if let Some((condition, _)) = region {
        return Err(error(format!("the optional region `{}` is never closed", condition.template_name())));
    }
    if !rest.is_empty() {
        top.push(Segment::Literal(rest.to_owned()));
    }
    if let Some(missing) = rules.required.iter().find(|slot| !seen[slot.index()]) {
        return Err(error(format!("the email must contain `slots.{}` (a per-recipient value)", slot_name(*missing))));
    }
    Ok(top)
}

/// The name a template author uses for a slot.
fn slot_name(slot: Slot) -> String {
    match slot {
        Slot::Name => "name".into(),
        Slot::UnsubscribeUrl => "unsubscribe_url".into(),
        Slot::ViewUrl => "view_url".into(),
        Slot::PixelUrl => "pixel_url".into(),
        Slot::ConfirmUrl => "confirm_url".into(),
        Slot::Tally => "tally".into(),
        rate => format!("rate_urls[{}]", RATE_SLOTS.iter().position(|r| *r == rate).unwrap_or(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: SlotRules<'static> = SlotRules { template: "t", required: &[Slot::UnsubscribeUrl], allowed: &Slot::ALL };

    fn m(code: &str) -> String {
        marker(code)
    }

    #[test]
    fn a_rendered_part_splits_into_literals_slots_and_regions() {
        let rendered =
            format!("<a href=\"{}\">x</a>Hello{} {}{},", m("unsubscribe"), m("ifname"), m("name"), m("endifname"));
        let segments = split(&rendered, &ALL).unwrap();
        assert_eq!(
            segments,
            vec![
                Segment::Literal("<a href=\"".into()),
                Segment::Slot(Slot::UnsubscribeUrl),
                Segment::Literal("\">x</a>Hello".into()),
                Segment::When(Condition::HasName, vec![Segment::Literal(" ".into()), Segment::Slot(Slot::Name)]),
                Segment::Literal(",".into()),
            ]
        );
    }

    #[test]
    fn a_missing_required_slot_is_named() {
        let error = split("no links here", &ALL).unwrap_err();
        assert!(error.to_string().contains("slots.unsubscribe_url"), "{error}");
    }

    #[test]
    fn a_damaged_marker_is_refused_rather_than_left_in_a_literal() {
        let error = split(&format!("{} tidingsslot-x", m("unsubscribe")), &ALL).unwrap_err();
        assert!(error.to_string().contains("damaged placeholder"), "{error}");
    }

    #[test]
    fn unbalanced_or_nested_regions_are_refused() {
        let u = m("unsubscribe");
        assert!(split(&format!("{u}{}", m("ifname")), &ALL).is_err());
        assert!(split(&format!("{u}{}{}", m("ifname"), m("ifpixel")), &ALL).is_err());
        assert!(split(&format!("{u}{}", m("endifname")), &ALL).is_err());
    }

    #[test]
    fn a_slot_outside_the_allowed_set_is_refused() {
        let rules = SlotRules { template: "confirm.mjml", required: &[], allowed: &[Slot::ConfirmUrl] };
        let error = split(&m("unsubscribe"), &rules).unwrap_err();
        assert!(error.to_string().starts_with("template confirm.mjml: "), "{error}");
    }
}
