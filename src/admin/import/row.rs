//! The columns of an import file and the checks that turn a record into an `ImportRow`.

use serde_json::{Map, Value};

use super::reader::Record;
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriptionStatus};
use crate::store::{ImportRow, Standing};

/// Columns that `subscriber export` writes besides `email`, `name` and `tz`: the list (which an import ignores:
/// it imports into the list it is given) and the subscription's status and consent evidence, which an import
/// keeps, so an export imports again without signing up anyone who left.
pub const RESERVED_COLUMNS: [&str; 10] = [
    "list",
    "status",
    "source",
    "created_at",
    "consent_at",
    "request_ip",
    "request_user_agent",
    "confirm_ip",
    "confirm_user_agent",
    "unsubscribed_at",
];

/// Where each standing column is, when the file has it.
#[derive(Debug, Clone, Default)]
struct StandingColumns {
    status: Option<usize>,
    source: Option<usize>,
    created_at: Option<usize>,
    consent_at: Option<usize>,
    request_ip: Option<usize>,
    request_user_agent: Option<usize>,
    confirm_ip: Option<usize>,
    confirm_user_agent: Option<usize>,
    unsubscribed_at: Option<usize>,
}

/// What each column of the file holds.
#[derive(Debug, Clone)]
pub struct Columns {
    email: usize,
    name: Option<usize>,
    time_zone: Option<usize>,
    /// Other columns, kept as attributes under their header name.
    attributes: Vec<(usize, String)>,
    standing: StandingColumns,
    count: usize,
}

impl Columns {
    /// Reads the header row: `email` is required, `name` and `tz` are optional, others become attributes.
    pub fn from_header(record: &Record) -> Result<Self, String> {
        let mut columns = Columns {
            email: usize::MAX,
            name: None,
            time_zone: None,
            attributes: Vec::new(),
            standing: StandingColumns::default(),
            count: 0,
        };
        let mut seen = std::collections::HashSet::new();
        for (index, raw) in record.fields.iter().enumerate() {
            let header = raw.trim();
            let key = header.to_lowercase();
            if key.is_empty() {
                return Err(format!("column {} of the header has no name", index + 1));
            }
            if header.chars().any(char::is_control) {
                return Err(format!("column {} of the header contains a control character", index + 1));
            }
            if !seen.insert(key.clone()) {
                return Err(format!("the header names the column `{header}` twice"));
            }
            match key.as_str() {
                "email" => columns.email = index,
                "name" => columns.name = Some(index),
                "tz" => columns.time_zone = Some(index),
                "status" => columns.standing.status = Some(index),
                "source" => columns.standing.source = Some(index),
                "created_at" => columns.standing.created_at = Some(index),
                "consent_at" => columns.standing.consent_at = Some(index),
                "request_ip" => columns.standing.request_ip = Some(index),
                "request_user_agent" => columns.standing.request_user_agent = Some(index),
                "confirm_ip" => columns.standing.confirm_ip = Some(index),
                "confirm_user_agent" => columns.standing.confirm_user_agent = Some(index),
                "unsubscribed_at" => columns.standing.unsubscribed_at = Some(index),
                reserved if RESERVED_COLUMNS.contains(&reserved) => {}
                _ => columns.attributes.push((index, header.to_owned())),
            }
        }
        if columns.email == usize::MAX {
            return Err(
                "the header has no `email` column (the first line must name the columns, e.g. `email,name`)".to_owned()
            );
        }
        columns.count = record.fields.len();
        Ok(columns)
    }

    /// Checks one record; the error is the line number and the reason.
    pub fn to_row(&self, record: &Record) -> Result<ImportRow, (u64, String)> {
        let fail = |reason: String| (record.line, located(record, reason));
        if record.fields.len() > self.count {
            return Err(fail(format!(
                "has {} fields but the header names {} (is there an unquoted comma in a value?)",
                record.fields.len(),
                self.count
            )));
        }
        let field = |index: usize| record.fields.get(index).map(String::as_str).unwrap_or("");
        let email = SubscriberEmail::parse(field(self.email)).map_err(|e| fail(e.to_string()))?;
        let name = match self.name {
            Some(index) => SubscriberName::parse(field(index)).map_err(|e| fail(e.to_string()))?,
            None => SubscriberName::default(),
        };
        let time_zone = match self.time_zone.map(field).map(str::trim).filter(|tz| !tz.is_empty()) {
            Some(tz) => match jiff::tz::TimeZone::get(tz) {
                Ok(_) => Some(tz.to_owned()),
                Err(_) => return Err(fail(format!("`{tz}` in column `tz` is not an IANA time zone"))),
            },
            None => None,
        };
        let mut attributes = Map::new();
        for (index, header) in &self.attributes {
            let value = field(*index).trim();
            if value.chars().any(char::is_control) {
                return Err(fail(format!(
                    "the value of `{header}` contains a line break or another control character"
                )));
            }
            if !value.is_empty() {
                attributes.insert(header.clone(), Value::String(value.to_owned()));
            }
        }
        let attributes = Value::Object(attributes).to_string();
        let standing = self.standing(&field).map_err(fail)?;
        Ok(ImportRow { line: record.line, email, name, attributes, time_zone, standing })
    }

    /// The subscription's status and consent evidence, from the columns an export writes.
    fn standing<'a>(&self, field: &impl Fn(usize) -> &'a str) -> Result<Standing, String> {
        let c = &self.standing;
        let value = |column: Option<usize>| column.map(field).map(str::trim).filter(|value| !value.is_empty());
        let text = |column: Option<usize>, header: &str| match value(column) {
            Some(text) if text.chars().any(char::is_control) => {
                Err(format!("the value of `{header}` contains a line break or another control character"))
            }
            other => Ok(other.map(str::to_owned)),
        };
        let time = |column: Option<usize>, header: &str| {
            value(column)
                .map(|text| {
                    text.parse::<jiff::Timestamp>()
                        .map(|at| at.as_millisecond())
                        .map_err(|_| format!("`{text}` in column `{header}` is not a time like 2026-12-07T08:00:00Z"))
                })
                .transpose()
        };
        Ok(Standing {
            status: value(c.status)
                .map(|text| SubscriptionStatus::parse(text).map_err(|e| format!("column `status`: {e}")))
                .transpose()?,
            source: value(c.source)
                .map(|text| ConsentSource::parse(text).map_err(|e| format!("column `source`: {e}")))
                .transpose()?,
            created_at: time(c.created_at, "created_at")?,
            consent_at: time(c.consent_at, "consent_at")?,
            request_ip: text(c.request_ip, "request_ip")?,
            request_user_agent: text(c.request_user_agent, "request_user_agent")?,
            confirm_ip: text(c.confirm_ip, "confirm_ip")?,
            confirm_user_agent: text(c.confirm_user_agent, "confirm_user_agent")?,
            unsubscribed_at: time(c.unsubscribed_at, "unsubscribed_at")?,
        })
    }
}

/// Adds the line span of a record that covered more than one line.
fn located(record: &Record, reason: String) -> String {
    if record.last_line > record.line {
        format!("{reason} (the row runs over lines {} to {})", record.line, record.last_line)
    } else {
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: u64, fields: &[&str]) -> Record {
        Record { line, last_line: line, fields: fields.iter().map(|f| f.to_string()).collect() }
    }

    #[test]
    fn the_header_finds_email_name_and_attributes_in_any_case_and_order() {
        let columns = Columns::from_header(&record(1, &["City", " EMAIL ", "Name", "status"])).unwrap();
        let row = columns.to_row(&record(2, &["Lyon", "ana@example.com", "Ana", "active"])).unwrap();
        assert_eq!(row.email.as_str(), "ana@example.com");
        assert_eq!(row.name.as_str(), "Ana");
        assert_eq!(row.attributes, r#"{"City":"Lyon"}"#);
    }

    #[test]
    fn a_header_without_email_or_with_a_repeated_column_is_refused() {
        assert!(Columns::from_header(&record(1, &["name", "mail"])).unwrap_err().contains("no `email` column"));
        assert!(Columns::from_header(&record(1, &["email", "Email"])).unwrap_err().contains("twice"));
        assert!(Columns::from_header(&record(1, &["email", ""])).unwrap_err().contains("column 2"));
    }

    #[test]
    fn each_bad_row_is_refused_with_its_reason() {
        let columns = Columns::from_header(&record(1, &["email", "name", "tz"])).unwrap();
        let reason = |fields: &[&str]| columns.to_row(&record(7, fields)).unwrap_err();
        assert_eq!(reason(&["", "x", ""]), (7, "the email address is empty".to_owned()));
        assert!(reason(&["not-an-address", "x", ""]).1.contains("no `@`"));
        assert!(reason(&["a@example.com", "Bob\rSmith", ""]).1.contains("line break"));
        assert!(reason(&["a@example.com", "x", "Mars/Base"]).1.contains("not an IANA time zone"));
        assert!(reason(&["a@example.com", "x", "", "extra"]).1.contains("4 fields"));
    }

    #[test]
    fn missing_trailing_fields_are_empty_and_a_valid_zone_is_kept() {
        let columns = Columns::from_header(&record(1, &["email", "name", "tz"])).unwrap();
        let row = columns.to_row(&record(2, &["a@example.com"])).unwrap();
        assert!(row.name.is_empty() && row.time_zone.is_none());
        let row = columns.to_row(&record(3, &["a@example.com", "", "Asia/Shanghai"])).unwrap();
        assert_eq!(row.time_zone.as_deref(), Some("Asia/Shanghai"));
    }

    #[test]
    fn an_exported_row_keeps_its_status_and_consent_evidence() {
        let header = ["email", "status", "source", "consent_at", "request_ip", "unsubscribed_at"];
        let columns = Columns::from_header(&record(1, &header)).unwrap();
        let row = columns
            .to_row(&record(2, &["a@example.com", "unsubscribed", "form", "2026-01-02T03:04:05Z", "192.0.2.7", ""]))
            .unwrap();
        assert_eq!(row.standing.status, Some(SubscriptionStatus::Unsubscribed));
        assert_eq!(row.standing.source, Some(ConsentSource::Form));
        assert_eq!(row.standing.consent_at, Some(1_767_323_045_000));
        assert_eq!(row.standing.request_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(row.standing.unsubscribed_at, None);
        assert_eq!(row.attributes, "{}");
        let reason = |fields: &[&str]| columns.to_row(&record(3, fields)).unwrap_err().1;
        assert!(reason(&["a@example.com", "gone", "", "", "", ""]).contains("`gone` is not one of"));
        assert!(reason(&["a@example.com", "", "mail", "", "", ""]).contains("column `source`"));
        assert!(reason(&["a@example.com", "", "", "yesterday", "", ""]).contains("`yesterday` in column `consent_at`"));
        let plain = Columns::from_header(&record(1, &["email"])).unwrap().to_row(&record(2, &["a@example.com"]));
        assert_eq!(plain.unwrap().standing, Standing::default());
    }

    #[test]
    fn a_multi_line_row_names_its_lines() {
        let columns = Columns::from_header(&record(1, &["email", "name"])).unwrap();
        let multi = Record { line: 5, last_line: 6, fields: vec!["a@example.com".into(), "Bob\nSmith".into()] };
        let (line, reason) = columns.to_row(&multi).unwrap_err();
        assert_eq!(line, 5);
        assert!(reason.contains("line break") && reason.contains("lines 5 to 6"), "{reason}");
    }
}
