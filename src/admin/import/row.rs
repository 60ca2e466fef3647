//! The columns of an import file and the checks that turn a record into an `ImportRow`.

use serde_json::{Map, Value};

use super::reader::Record;
use crate::domain::{SubscriberEmail, SubscriberName};
use crate::store::ImportRow;

/// Columns that `subscriber export` writes and an import ignores, so an export can be imported again.
pub const RESERVED_COLUMNS: [&str; 5] = ["list", "status", "source", "created_at", "consent_at"];

/// What each column of the file holds.
#[derive(Debug, Clone)]
pub struct Columns {
    email: usize,
    name: Option<usize>,
    time_zone: Option<usize>,
    /// Other columns, kept as attributes under their header name.
    attributes: Vec<(usize, String)>,
    count: usize,
}

impl Columns {
    /// Reads the header row: `email` is required, `name` and `tz` are optional, others become attributes.
    pub fn from_header(record: &Record) -> Result<Self, String> {
        let mut columns = Columns { email: usize::MAX, name: None, time_zone: None, attributes: Vec::new(), count: 0 };
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
        Ok(ImportRow { line: record.line, email, name, attributes, time_zone })
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
    fn a_multi_line_row_names_its_lines() {
        let columns = Columns::from_header(&record(1, &["email", "name"])).unwrap();
        let multi = Record { line: 5, last_line: 6, fields: vec!["a@example.com".into(), "Bob\nSmith".into()] };
        let (line, reason) = columns.to_row(&multi).unwrap_err();
        assert_eq!(line, 5);
        assert!(reason.contains("line break") && reason.contains("lines 5 to 6"), "{reason}");
    }
}
