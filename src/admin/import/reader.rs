//! A CSV record reader that keeps going after a broken row.
//!
//! A plain CSV parser that meets an unclosed quote swallows every following line into one field, losing good
//! rows. This reader reads physical lines (bounded in length) and joins a line to the next only when the first
//! ends inside a quoted field and the pair closes it; otherwise the broken line alone is refused and reading
//! resumes at the next line. Fields are then split by `csv_core`. Memory stays bounded by the longest line.

use std::io::{self, BufRead};

/// Longest physical line accepted; longer ones are refused and skipped without being held in memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// One CSV record: its first and last physical line numbers (1-based) and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: u64,
    pub last_line: u64,
    pub fields: Vec<String>,
}

/// A line that could not be read as a record, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

struct PhysicalLine {
    number: u64,
    bytes: Vec<u8>,
    too_long: bool,
}

/// Reads records from `input`, skipping blank lines.
pub struct RecordReader<R> {
    input: R,
    lines_read: u64,
    bytes_read: u64,
    pending: Option<PhysicalLine>,
    csv: csv_core::Reader,
    field_bytes: Vec<u8>,
    field_ends: Vec<usize>,
}

impl<R: BufRead> RecordReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            lines_read: 0,
            bytes_read: 0,
            pending: None,
            csv: csv_core::Reader::new(),
            field_bytes: vec![0; 1024],
            field_ends: vec![0; 32],
        }
    }

    /// Bytes consumed from the input so far, for progress.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next record, a refused line, or `None` at the end of the input.
    pub fn next_record(&mut self) -> io::Result<Option<Result<Record, Rejected>>> {
        loop {
            let Some(first) = self.next_line()? else { return Ok(None) };
            if first.too_long {
                let reason = format!("the line is longer than {} KiB", MAX_LINE_BYTES / 1024);
                return Ok(Some(Err(Rejected { line: first.number, reason })));
            }
            if first.bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let state = scan(QuoteState::FieldStart, &first.bytes);
            if state != QuoteState::Quoted {
                return Ok(Some(self.parse(first.number, first.number, &first.bytes)));
            }
            // The line ends inside a quoted field: either a field with a line break, closed on the next line,
            // or a quote that is never closed. The next line completes the first only if it has an odd number of
            // quotes itself (the closing one) and closes the field; otherwise the first line is refused alone.
            match self.next_line()? {
                Some(second) if !second.too_long && closes_quoted_field(&second.bytes) => {
                    let mut joined = first.bytes;
                    joined.push(b'\n');
                    joined.extend_from_slice(&second.bytes);
                    return Ok(Some(self.parse(first.number, second.number, &joined)));
                }
                second => {
                    self.pending = second;
                    let reason = "a quoted field is not closed (a `\"` without its partner)".to_owned();
                    return Ok(Some(Err(Rejected { line: first.number, reason })));
                }
            }
        }
    }

    fn parse(&mut self, line: u64, last_line: u64, bytes: &[u8]) -> Result<Record, Rejected> {
        if std::str::from_utf8(bytes).is_err() {
            return Err(Rejected { line, reason: "the line is not valid UTF-8 (save the file as UTF-8)".to_owned() });
        }
        self.csv.reset();
        let mut input = bytes;
        let (mut out_len, mut ends_len) = (0, 0);
        loop {
            let (result, read, written, ends) =
                self.csv.read_record(input, &mut self.field_bytes[out_len..], &mut self.field_ends[ends_len..]);
            input = &input[read..];
            out_len += written;
            ends_len += ends;
            match result {
                csv_core::ReadRecordResult::InputEmpty => {} // Next call, with empty input, ends the record.
                csv_core::ReadRecordResult::OutputFull => self.field_bytes.resize(self.field_bytes.len() * 2, 0),
                csv_core::ReadRecordResult::OutputEndsFull => self.field_ends.resize(self.field_ends.len() * 2, 0),
                csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End => break,
            }
        }
        let mut fields = Vec::with_capacity(ends_len);
        let mut start = 0;
        for &end in &self.field_ends[..ends_len] {
            // Quotes are ASCII, so removing them keeps valid UTF-8 valid.
            fields.push(String::from_utf8_lossy(&self.field_bytes[start..end]).into_owned());
            start = end;
        }
        Ok(Record { line, last_line, fields })
    }

    /// The next physical line without its `\n` or `\r\n`, or `None` at the end of the input.
    fn next_line(&mut self) -> io::Result<Option<PhysicalLine>> {
        if let Some(line) = self.pending.take() {
            return Ok(Some(line));
        }
        let mut bytes = Vec::new();
        let mut too_long = false;
        let mut any = false;
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                break;
            }
            any = true;
            let (chunk, consumed, done) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (&available[..end], end + 1, true),
                None => (available, available.len(), false),
            };
            if !too_long && bytes.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                bytes = Vec::new();
            }
            if !too_long {
                bytes.extend_from_slice(chunk);
            }
            self.input.consume(consumed);
            self.bytes_read += consumed as u64;
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if self.lines_read == 0 && bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes.drain(..3); // A byte order mark, as spreadsheet programs write.
        }
        self.lines_read += 1;
        Ok(Some(PhysicalLine { number: self.lines_read, bytes, too_long }))
    }
}

/// Where a CSV scanner stands with respect to quoting (RFC 4180, read as leniently as `csv_core` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// Whether `line`, read as the continuation of a quoted field, closes it: it carries an odd number of quotes
/// (so it is not a complete row of its own) and ends outside quotes.
fn closes_quoted_field(line: &[u8]) -> bool {
    let quotes = line.iter().filter(|&&b| b == b'"').count();
    quotes % 2 == 1 && scan(QuoteState::Quoted, line) != QuoteState::Quoted
}

fn scan(mut state: QuoteState, bytes: &[u8]) -> QuoteState {
    for &byte in bytes {
        state = match (state, byte) {
            (QuoteState::FieldStart, b'"') => QuoteState::Quoted,
            (QuoteState::FieldStart | QuoteState::Unquoted | QuoteState::QuoteInQuoted, b',') => QuoteState::FieldStart,
            (QuoteState::FieldStart | QuoteState::Unquoted, _) => QuoteState::Unquoted,
            (QuoteState::Quoted, b'"') => QuoteState::QuoteInQuoted,
            (QuoteState::Quoted, _) => QuoteState::Quoted,
            (QuoteState::QuoteInQuoted, b'"') => QuoteState::Quoted,
            (QuoteState::QuoteInQuoted, _) => QuoteState::Unquoted,
        };
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &str) -> Vec<Result<Record, Rejected>> {
        let mut reader = RecordReader::new(input.as_bytes());
        let mut out = Vec::new();
        while let Some(item) = reader.next_record().unwrap() {
            out.push(item);
        }
        out
    }

    fn fields(item: &Result<Record, Rejected>) -> Vec<&str> {
        item.as_ref().unwrap().fields.iter().map(String::as_str).collect()
    }

    #[test]
    fn quoted_fields_with_commas_and_escaped_quotes_are_read() {
        let items = read_all("email,name\r\nana@example.com,\"Ana, \"\"the\"\" Great\"\r\nbo@example.org,Bo\n");
        assert_eq!(items.len(), 3);
        assert_eq!(fields(&items[1]), ["ana@example.com", "Ana, \"the\" Great"]);
        assert_eq!(items[2].as_ref().unwrap().line, 3);
    }

    #[test]
    fn an_unclosed_quote_loses_only_its_own_line() {
        let items =
            read_all("email,name\n\"broken@example.com,Broken\nok1@example.com,\"One, Jr\"\nok2@example.com,\"Two\"\n");
        assert_eq!(items.len(), 4);
        assert_eq!(items[1], Err(Rejected { line: 2, reason: items[1].clone().unwrap_err().reason }));
        assert!(items[1].as_ref().unwrap_err().reason.contains("not closed"));
        assert_eq!(fields(&items[2]), ["ok1@example.com", "One, Jr"]);
        assert_eq!(fields(&items[3]), ["ok2@example.com", "Two"]);
    }

    #[test]
    fn a_line_break_inside_a_quoted_field_makes_one_record_over_two_lines() {
        let items = read_all("email,name\nbob@example.com,\"Bob\r\nSmith\"\nnext@example.com,Next\n");
        assert_eq!(items.len(), 3);
        let record = items[1].as_ref().unwrap();
        assert_eq!((record.line, record.last_line), (2, 3));
        assert_eq!(record.fields[1], "Bob\nSmith");
        assert_eq!(items[2].as_ref().unwrap().line, 4);
    }

    #[test]
    fn blank_lines_a_byte_order_mark_and_a_missing_final_newline_are_handled() {
        let items = read_all("\u{feff}email\n\n  \na@example.com");
        assert_eq!(items.len(), 2);
        assert_eq!(fields(&items[0]), ["email"]);
        assert_eq!(items[1].as_ref().unwrap().line, 4);
    }

    #[test]
    fn overlong_and_non_utf8_lines_are_refused_and_reading_goes_on() {
        let mut input = b"email\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        input.extend_from_slice(b"\n\xff\xfe@example.com\nok@example.com\n");
        let mut reader = RecordReader::new(&input[..]);
        let mut items = Vec::new();
        while let Some(item) = reader.next_record().unwrap() {
            items.push(item);
        }
        assert_eq!(items.len(), 4);
        assert!(items[1].as_ref().unwrap_err().reason.contains("longer than 64 KiB"));
        assert!(items[2].as_ref().unwrap_err().reason.contains("UTF-8"));
        assert_eq!(fields(&items[3]), ["ok@example.com"]);
        assert_eq!(reader.bytes_read(), input.len() as u64);
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_literal() {
        let items = read_all("email,name\nx@example.com,Bob 5\" tall\n");
        assert_eq!(fields(&items[1]), ["x@example.com", "Bob 5\" tall"]);
    }
}
