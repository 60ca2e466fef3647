//! The caniemail support data (`tests/caniemail/caniemail.json`, vendored) read for the clients the gate
//! checks, and the allowlist (`tests/caniemail/allowlist.toml`) of unsupported features the email uses on
//! purpose.
//!
//! A client's verdict on a feature is the result of its most recent test in the data (the last version listed,
//! the data lists them oldest first): `y` supported, `a` partial (supported with caveats, see the notes), `n`
//! not supported, `u` unknown. Only `n` fails the gate; partial support is printed with its notes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

/// The clients the gate checks: (id used in the allowlist, caniemail family, caniemail platform, shown name).
pub const CLIENTS: &[(&str, &str, &str, &str)] = &[
    ("gmail-web", "gmail", "desktop-webmail", "Gmail (web)"),
    ("gmail-ios", "gmail", "ios", "Gmail (iOS)"),
    ("gmail-android", "gmail", "android", "Gmail (Android)"),
    ("apple-mail-macos", "apple-mail", "macos", "Apple Mail (macOS)"),
    ("apple-mail-ios", "apple-mail", "ios", "Apple Mail (iOS)"),
    ("outlook-windows", "outlook", "windows", "Outlook (Windows)"),
    ("outlook-com", "outlook", "outlook-com", "Outlook.com"),
    ("outlook-ios", "outlook", "ios", "Outlook (iOS)"),
    ("outlook-android", "outlook", "android", "Outlook (Android)"),
    ("yahoo-web", "yahoo", "desktop-webmail", "Yahoo (web)"),
    ("yahoo-ios", "yahoo", "ios", "Yahoo (iOS)"),
    ("yahoo-android", "yahoo", "android", "Yahoo (Android)"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Supported,
    Partial,
    Unsupported,
    Unknown,
}

/// One client's most recent result for a feature.
#[derive(Debug, Clone)]
pub struct Tested {
    pub verdict: Verdict,
    /// The version or date of that test, as the data names it.
    pub tested: String,
    /// The notes the result refers to ("#1"), in full.
    pub notes: Vec<String>,
}

#[derive(Debug)]
pub struct Feature {
    pub title: String,
    /// By client id; a client the data does not list is missing.
    pub results: HashMap<&'static str, Tested>,
}

pub struct Support {
    pub updated: String,
    pub features: HashMap<String, Feature>,
}

/// A JSON object read with its keys in the file's order (the data lists versions oldest first).
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(Entries(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct RawData {
    last_update_date: String,
    data: Vec<RawFeature>,
}

#[derive(Deserialize)]
struct RawFeature {
    slug: String,
    title: String,
    /// family -> platform -> version -> "y", "a #1", "n", ...
    stats: HashMap<String, HashMap<String, Ordered<String>>>,
    #[serde(default)]
    notes_by_num: Option<HashMap<String, String>>,
}

impl Support {
    pub fn load(path: &Path) -> Support {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let raw: RawData =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not caniemail data: {e}", path.display()));
        let features = raw.data.into_iter().map(|feature| (feature.slug.clone(), Feature::from_raw(feature))).collect();
        Support { updated: raw.last_update_date, features }
    }
}

impl Feature {
    fn from_raw(raw: RawFeature) -> Feature {
        let notes = raw.notes_by_num.unwrap_or_default();
        let mut results = HashMap::new();
        for (id, family, platform, _) in CLIENTS {
            let Some((tested, value)) = raw.stats.get(*family).and_then(|p| p.get(*platform)).and_then(|v| v.0.last())
            else {
                continue;
            };
            let mut words = value.split_whitespace();
            let verdict = match words.next() {
                Some("y") => Verdict::Supported,
                Some("a") => Verdict::Partial,
                Some("n") => Verdict::Unsupported,
                _ => Verdict::Unknown,
            };
            let notes = words
                .filter_map(|word| word.strip_prefix('#'))
                .map(|n| format!("#{n} {}", notes.get(n).map_or("(no text)", String::as_str)))
                .collect();
            results.insert(*id, Tested { verdict, tested: tested.clone(), notes });
        }
        Feature { title: raw.title, results }
    }
}

/// One allowlist entry: a feature the email uses on purpose although these clients do not support it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    pub feature: String,
    pub clients: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    #[serde(default)]
    allow: Vec<Allowed>,
}

/// The allowlist, checked: every client id is one of [`CLIENTS`], every reason says something, no feature twice.
pub fn allowlist(path: &Path) -> BTreeMap<String, Allowed> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file: AllowFile = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut entries = BTreeMap::new();
    for entry in file.allow {
        for client in &entry.clients {
            assert!(
                CLIENTS.iter().any(|(id, ..)| id == client),
                "{}: entry {}: unknown client `{client}` (one of: {})",
                path.display(),
                entry.feature,
                CLIENTS.iter().map(|(id, ..)| *id).collect::<Vec<_>>().join(", ")
            );
        }
        assert!(entry.reason.trim().len() >= 20, "{}: entry {} needs a real reason", path.display(), entry.feature);
        let feature = entry.feature.clone();
        assert!(entries.insert(feature.clone(), entry).is_none(), "{}: {feature} is listed twice", path.display());
    }
    entries
}

pub fn client_name(id: &str) -> &'static str {
    CLIENTS.iter().find(|(client, ..)| *client == id).map_or("?", |(.., name)| *name)
}
