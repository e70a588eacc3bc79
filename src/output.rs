//! The one place that writes to the terminal: data to stdout, warnings and progress to stderr.
//! It also renders tables and JSON/YAML, so every command formats the same way.

use std::io::Write;

use serde::Serialize;
use tabled::settings::Style;

use crate::cli::Format;

/// Writes data to stdout. A closed pipe (`e list | head`) is not an error.
pub fn data(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let result = stdout
        .write_all(text.as_bytes())
        .and_then(|()| if text.ends_with('\n') || text.is_empty() { Ok(()) } else { stdout.write_all(b"\n") })
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

/// Renders rows as a borderless table with a header, like `docker ps` and `kubectl get`.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut builder = tabled::builder::Builder::default();
    builder.push_record(header.iter().map(|h| h.to_string()));
    for row in rows {
        builder.push_record(row);
    }
    let mut table = builder.build();
    table.with(Style::blank());
    // Tabled pads the last column too; trim it so lines end cleanly.
    table.to_string().lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}

/// Renders a value as JSON or YAML; `None` for the table format, which each command draws.
pub fn serialized<T: Serialize>(format: Format, value: &T) -> anyhow::Result<Option<String>> {
    Ok(match format {
        Format::Table => None,
        Format::Json => Some(serde_json::to_string_pretty(value)? + "\n"),
        Format::Yaml => Some(serde_yaml::to_string(value)?),
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
    let _ = err.write_all(question.as_bytes()).and_then(|()| err.flush());
}
