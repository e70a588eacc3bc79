//! The one place that writes to the terminal: data to stdout, warnings and progress to stderr.
//! It also renders tables and JSON/YAML, so every command formats the same way.

use std::io::{IsTerminal as _, Write};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::cli::Format;

/// Whether color is turned off: `--no-color` before any `--` on the command line, or a
/// non-empty `NO_COLOR` (no-color.org). Read before the arguments are parsed, since clap
/// colors its own errors and help.
pub fn no_color_requested() -> bool {
    let flag = std::env::args_os()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--no-color");
    flag || std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
}

/// Writes data to stdout. A closed pipe (`e list | head`) is not an error.
pub fn data(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let result = stdout
        .write_all(text.as_bytes())
        .and_then(|()| {
            if text.ends_with('\n') || text.is_empty() {
                Ok(())
            } else {
                stdout.write_all(b"\n")
            }
        })
        .and_then(|()| stdout.flush());
    match result {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Writes a warning to stderr.
pub fn warn(message: &str) {
    eprintln!("warning: {message}");
}

/// Writes a note for the user to stderr, so it never mixes with data on stdout.
pub fn note(message: &str) {
    eprintln!("{message}");
}

/// Writes an error with its whole chain to stderr.
pub fn error(err: &anyhow::Error) {
    eprintln!("error: {err:#}");
}

/// Renders rows as a borderless table with a header, like `docker ps` and `kubectl get`:
/// each column as wide as its widest line (in terminal columns), one space of padding on each
/// side of a cell and one between columns, a cell's lines on lines of their own, and no
/// spaces at the ends of lines. The layout of tabled's blank style, written out because
/// tabled took a third of `e list`'s time for 30,000 rows (`docs/benchmarks.md`); a test
/// compares the two.
pub fn table<C: AsRef<str>>(header: &[&str], rows: Vec<Vec<C>>) -> String {
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain([header.len()])
        .max()
        .unwrap_or(0);
    // The last column is never padded, so its width is never needed (and its cells are
    // the longest: the labels of `e list`).
    let mut widths = vec![0; columns];
    let measured = columns.saturating_sub(1);
    let mut bytes = 0;
    let mut measure = |record: &mut dyn Iterator<Item = &str>| {
        for (column, cell) in record.enumerate() {
            bytes += cell.len() + 3;
            if column < measured {
                for line in cell.split('\n') {
                    widths[column] = widths[column].max(columns_of(line));
                }
            }
        }
    };
    measure(&mut header.iter().copied());
    for row in &rows {
        measure(&mut row.iter().map(AsRef::as_ref));
    }
    let padding: usize = widths.iter().sum();
    let mut out = String::with_capacity(bytes + (rows.len() + 1) * (padding + 1));
    draw_record(&mut out, &widths, header);
    for row in &rows {
        draw_record(&mut out, &widths, row);
    }
    out
}

/// How many terminal columns a line of text takes: its length when it is printable ASCII
/// (nearly every cell, and ten times faster to tell), else its Unicode width.
fn columns_of(text: &str) -> usize {
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        text.len()
    } else {
        unicode_width::UnicodeWidthStr::width(text)
    }
}

/// Draws one record of [`table`]: as many lines as its tallest cell.
fn draw_record<C: AsRef<str>>(out: &mut String, widths: &[usize], record: &[C]) {
    let cell = |column: usize| record.get(column).map_or("", AsRef::as_ref);
    if record.iter().all(|cell| !cell.as_ref().contains('\n')) {
        draw_line(out, widths, cell);
        return;
    }
    let height = record
        .iter()
        .map(|cell| cell.as_ref().split('\n').count())
        .max()
        .unwrap_or(1);
    for line in 0..height {
        draw_line(out, widths, |column| {
            cell(column).split('\n').nth(line).unwrap_or("")
        });
    }
}

/// Draws one line of a record, `text(column)` in each column.
fn draw_line<'t>(out: &mut String, widths: &[usize], text: impl Fn(usize) -> &'t str) {
    const SPACES: &str = "                                                                ";
    let start = out.len();
    for (column, width) in widths.iter().enumerate() {
        let text = text(column);
        out.push(' ');
        out.push_str(text);
        if column + 1 < widths.len() {
            let mut pad = width - columns_of(text) + 2;
            while pad > 0 {
                let spaces = pad.min(SPACES.len());
                out.push_str(&SPACES[..spaces]);
                pad -= spaces;
            }
        }
    }
    out.truncate(start + out[start..].trim_end().len());
    out.push('\n');
}

/// Renders a value as JSON or YAML; `None` for the table format, which each command draws.
pub fn serialized<T: Serialize>(format: Format, value: &T) -> anyhow::Result<Option<String>> {
    Ok(match format {
        Format::Table => None,
        Format::Json => Some(serde_json::to_string_pretty(value)? + "\n"),
        Format::Yaml => Some(crate::yaml_emit::to_string(value)?),
    })
}

/// Passes a module's output through: its stdout to ours, its stderr to ours.
pub fn stream(stream: crate::runtime::Stream, text: &str) {
    let result = match stream {
        crate::runtime::Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        crate::runtime::Stream::Stderr => {
            let mut err = std::io::stderr().lock();
            err.write_all(text.as_bytes()).and_then(|()| err.flush())
        }
    };
    // A closed pipe must not stop the module; its output is still captured for the history.
    drop(result);
}

/// Asks a question on stderr, without a newline, so the answer is typed after it.
pub fn prompt(question: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(question.as_bytes())
        .and_then(|()| err.flush());
}

/// A size for people: `512 B`, `3.4 kB`, `12.0 MB`, `1.20 GB` (powers of 1000, like `docker`).
pub fn size(bytes: u64) -> String {
    let value = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", value / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", value / 1e6),
        _ => format!("{:.2} GB", value / 1e9),
    }
}

/// How often a live progress line is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// The progress of a long transfer on stderr: bytes done of the total, the rate and the time
/// left, redrawn at most every 250 ms while stderr is a terminal (or `E_PROGRESS=1`), and one
/// summary line at the end in every case.
#[derive(Debug)]
pub struct Progress {
    label: String,
    /// The bytes there will be, when known in advance.
    total: Option<u64>,
    done: u64,
    started: Instant,
    /// When the first byte came: the rate counts from there, not from a wait before it.
    first: Option<Instant>,
    drawn: Option<Instant>,
    live: bool,
    terminal: bool,
}

impl Progress {
    /// Starts the progress of `label` (`exporting`, `loading images`) towards `total` bytes.
    pub fn new(label: &str, total: u64) -> Progress {
        Progress::with_total(label, Some(total))
    }

    /// Starts a progress whose total is not known: it shows the bytes done and the rate.
    pub fn unbounded(label: &str) -> Progress {
        Progress::with_total(label, None)
    }

    fn with_total(label: &str, total: Option<u64>) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let live = match std::env::var("E_PROGRESS").as_deref() {
            Ok("1") => true,
            Ok("0") => false,
            _ => terminal,
        };
        Progress {
            label: label.to_owned(),
            total,
            done: 0,
            started: Instant::now(),
            first: None,
            drawn: None,
            live,
            terminal,
        }
    }

    /// Counts `bytes` more done, redrawing the line when it is due.
    pub fn advance(&mut self, bytes: u64) {
        if bytes > 0 && self.first.is_none() {
            self.first = Some(Instant::now());
        }
        self.done += bytes;
        if !self.live
            || self
                .drawn
                .is_some_and(|at| at.elapsed() < PROGRESS_INTERVAL)
        {
            return;
        }
        self.drawn = Some(Instant::now());
        let line = self.line();
        self.draw(&line);
    }

    /// The live line: done of the total, the rate since the first byte, and the time left.
    fn line(&self) -> String {
        let elapsed = self
            .first
            .map_or(0.0, |first| first.elapsed().as_secs_f64());
        // Under a second of data says little about the rate; no estimate until then.
        let rate = (elapsed >= 1.0).then(|| self.done as f64 / elapsed);
        let rate_text = rate.map_or_else(
            || "--".to_owned(),
            |rate| format!("{}/s", size(rate as u64)),
        );
        match self.total {
            Some(total) => {
                let total = total.max(self.done);
                let left = match rate {
                    Some(rate) if rate > 0.0 => {
                        format!("{:.0} s left", (total - self.done) as f64 / rate)
                    }
                    _ => "--".to_owned(),
                };
                format!(
                    "{}: {} / {} ({rate_text}, {left})",
                    self.label,
                    size(self.done),
                    size(total)
                )
            }
            None => format!("{}: {} written ({rate_text})", self.label, size(self.done)),
        }
    }

    /// Bytes counted so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Ends the progress with one line: how much, how long, how fast.
    pub fn finish(self) {
        let elapsed = self.started.elapsed();
        let rate = self.done as f64 / elapsed.as_secs_f64().max(1e-9);
        let line = format!(
            "{}: {} in {:.1} s ({}/s)",
            self.label,
            size(self.done),
            elapsed.as_secs_f64(),
            size(rate as u64)
        );
        if self.live && self.terminal && self.drawn.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{line}\x1b[K\n").and_then(|()| err.flush());
        } else {
            eprintln!("{line}");
        }
    }

    fn draw(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        // On a terminal the line is redrawn in place; in a log, each state is a line.
        let written = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = written.and_then(|()| err.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table as tabled's blank style draws it, lines trimmed.
    fn tabled(header: &[&str], rows: &[Vec<String>]) -> String {
        let mut builder = tabled::builder::Builder::default();
        builder.push_record(header.iter().map(|h| h.to_string()));
        for row in rows {
            builder.push_record(row.clone());
        }
        let mut table = builder.build();
        table.with(tabled::settings::Style::blank());
        table
            .to_string()
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    #[test]
    fn tables_are_drawn_as_tabled_draws_them() {
        let words = [
            "",
            "a",
            "bmk",
            "azi@0.1.0",
            "kind=monitoring name=\"Bare Metal Kafka\"",
            "é",
            "日本語",
            "two\nlines",
            "ends ",
            " starts",
            "x\n",
            "\ny",
            "tab\there",
            "*",
            "1.10",
        ];
        let mut random = fastrand::Rng::with_seed(7);
        let mut next = move |n: usize| random.usize(..n);
        for case in 0..300 {
            let columns = 1 + next(4);
            let header: Vec<&str> = ["MODULE", "VERSION", "LATEST", "LABELS"][..columns].to_vec();
            let rows: Vec<Vec<String>> = (0..next(6))
                .map(|_| {
                    // Now and then a row shorter than the header.
                    let cells = if next(5) == 0 {
                        next(columns + 1)
                    } else {
                        columns
                    };
                    (0..cells)
                        .map(|_| words[next(words.len())].to_owned())
                        .collect()
                })
                .collect();
            assert_eq!(
                table(&header, rows.clone()),
                tabled(&header, &rows),
                "case {case}: {header:?} {rows:?}"
            );
        }
    }

    fn started_ago(seconds: u64) -> Option<Instant> {
        Instant::now().checked_sub(Duration::from_secs(seconds))
    }

    #[test]
    fn progress_counts_bytes_and_rates_from_the_first_byte() {
        // A wait before the first byte (the engine preparing a save) is no part of the rate.
        let mut export = Progress::unbounded("exporting");
        export.started = started_ago(5).expect("a clock that has run 5 s");
        assert_eq!(export.line(), "exporting: 0 B written (--)");
        export.done = 5_000_000;
        export.first = started_ago(2);
        assert_eq!(export.line(), "exporting: 5.0 MB written (2.5 MB/s)");

        let mut load = Progress::new("loading images", 10_000_000);
        load.done = 5_000_000;
        load.first = started_ago(2);
        assert_eq!(
            load.line(),
            "loading images: 5.0 MB / 10.0 MB (2.5 MB/s, 2 s left)"
        );
        // Under a second of data, no estimate.
        load.first = Some(Instant::now());
        assert_eq!(load.line(), "loading images: 5.0 MB / 10.0 MB (--, --)");
    }
}
