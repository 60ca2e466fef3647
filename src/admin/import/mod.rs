//! `subscriber import FILE.csv`: streams a CSV file into a list in batched transactions.
//!
//! A blocking thread reads and checks rows while the database writes the previous batch, so both cores work.
//! Every refused row is reported with its line number and reason, the good rows are kept, and importing the
//! same file again changes nothing. Memory holds a few batches at most (two queued, one being read, one being
//! written), whatever the file's size.

mod reader;
mod row;

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

pub use reader::{MAX_LINE_BYTES, Record, RecordReader, Rejected};
pub use row::{Columns, RESERVED_COLUMNS};

use crate::clock::Clock;
use crate::store::{ImportBatch, Store};

/// Rows written per transaction.
const BATCH_ROWS: usize = 5_000;

/// The totals of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Non-blank records after the header.
    pub rows: u64,
    pub added: u64,
    pub already_subscribed: u64,
    /// Refused rows: malformed, invalid or repeated within the file.
    pub rejected: u64,
    /// Rows skipped because the address is on the suppression list.
    pub suppressed: u64,
    /// Subscriptions that the file's status ended (it said unsubscribed, bounced or complained).
    pub opted_out: u64,
}

/// A row that was not imported, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub message: String,
    /// Skipped rather than refused: not an error in the file.
    pub skipped: bool,
}

/// What the reading thread hands the writer.
struct ParsedBatch {
    batch: ImportBatch,
    problems: Vec<Problem>,
    records: u64,
    bytes_read: u64,
}

/// Imports `path` (`-` for standard input) into `list_id`; `report` receives each problem in line order.
pub async fn import_file(
    store: &Store,
    clock: &Clock,
    list_id: i64,
    path: &Path,
    mut report: impl FnMut(&Problem),
) -> anyhow::Result<ImportSummary> {
    let (input, size): (Box<dyn Read + Send>, Option<u64>) = if path == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let mut records = RecordReader::new(BufReader::with_capacity(256 * 1024, input));
    let columns = read_header(&mut records).with_context(|| format!("{} has no usable header row", path.display()))?;

    let session = store.begin_import(list_id).await?;
    let progress = Progress::new(size);
    let (sender, mut receiver) = mpsc::channel::<anyhow::Result<ParsedBatch>>(2);
    let reading = tokio::task::spawn_blocking(move || read_batches(records, columns, sender));

    let mut summary = ImportSummary::default();
    while let Some(batch) = receiver.recv().await {
        let batch = batch?;
        let outcome = store.import_batch(&session, &batch.batch, clock.now()).await?;
        let mut problems = batch.problems;
        problems.extend(outcome.duplicates.iter().map(|&line| Problem {
            line,
            message: "repeats an address that appears earlier in the file".to_owned(),
            skipped: false,
        }));
        problems.extend(outcome.suppressed.iter().map(|&(line, reason)| Problem {
            line,
            message: format!("skipped: the address is on the suppression list ({reason})"),
            skipped: true,
        }));
        problems.sort_by_key(|p| p.line);
        for problem in &problems {
            progress.suspend(|| report(problem));
        }
        summary.rows += batch.records;
        summary.added += outcome.added;
        summary.already_subscribed += outcome.already_subscribed;
        summary.suppressed += outcome.suppressed.len() as u64;
        summary.opted_out += outcome.opted_out;
        summary.rejected += problems.iter().filter(|p| !p.skipped).count() as u64;
        progress.update(batch.bytes_read, &summary);
    }
    reading.await.context("the CSV reader stopped unexpectedly")?;
    progress.finish();
    Ok(summary)
}

fn read_header<R: std::io::BufRead>(records: &mut RecordReader<R>) -> anyhow::Result<Columns> {
    match records.next_record()? {
        None => anyhow::bail!("the file is empty; the first line must name the columns, e.g. `email,name`"),
        Some(Err(rejected)) => anyhow::bail!("line {}: {}", rejected.line, rejected.reason),
        Some(Ok(record)) => Columns::from_header(&record).map_err(|e| anyhow::anyhow!("line {}: {e}", record.line)),
    }
}

/// Runs on a blocking thread: reads, checks and batches rows until the input ends or the writer stops.
fn read_batches<R: std::io::BufRead>(
    mut records: RecordReader<R>,
    columns: Columns,
    sender: mpsc::Sender<anyhow::Result<ParsedBatch>>,
) {
    let mut rows = Vec::with_capacity(BATCH_ROWS);
    let mut problems = Vec::new();
    let mut count: u64 = 0;
    // Encoding rows for the database happens on this thread too, so it overlaps the database's work.
    let seal = |rows: &mut Vec<_>, problems: &mut Vec<Problem>, count: &mut u64, bytes_read: u64| ParsedBatch {
        batch: ImportBatch::new(std::mem::replace(rows, Vec::with_capacity(BATCH_ROWS))),
        problems: std::mem::take(problems),
        records: std::mem::take(count),
        bytes_read,
    };
    loop {
        let item = match records.next_record() {
            Ok(item) => item,
            Err(e) => {
                let _ = sender.blocking_send(Err(anyhow::Error::new(e).context("cannot read the CSV file")));
                return;
            }
        };
        let Some(item) = item else { break };
        count += 1;
        match item.map_err(|r| (r.line, r.reason)).and_then(|record| columns.to_row(&record)) {
            Ok(row) => rows.push(row),
            Err((line, message)) => problems.push(Problem { line, message, skipped: false }),
        }
        if rows.len() + problems.len() >= BATCH_ROWS {
            let batch = seal(&mut rows, &mut problems, &mut count, records.bytes_read());
            if sender.blocking_send(Ok(batch)).is_err() {
                return; // The writer failed and reports why.
            }
        }
    }
    let batch = seal(&mut rows, &mut problems, &mut count, records.bytes_read());
    let _ = sender.blocking_send(Ok(batch));
}

/// A progress bar on a terminal; plain lines at every tenth of the file otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    size: Option<u64>,
    next_line_at: std::cell::Cell<u64>,
}

impl Progress {
    fn new(size: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(size.unwrap_or(0));
            let template = "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}";
            bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
            bar
        });
        Self { bar, size, next_line_at: std::cell::Cell::new(0) }
    }

    fn suspend(&self, f: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    fn update(&self, bytes_read: u64, summary: &ImportSummary) {
        let message = format!("{} rows: {} added, {} rejected", summary.rows, summary.added, summary.rejected);
        if let Some(bar) = &self.bar {
            bar.set_position(bytes_read);
            bar.set_message(message);
        } else if let Some(size) = self.size.filter(|&size| bytes_read >= self.next_line_at.get() && bytes_read < size)
        {
            eprintln!("{:>3}% {message}", bytes_read * 100 / size);
            self.next_line_at.set(bytes_read + size / 10);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
