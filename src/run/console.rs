//! The console of a run: container output printed (masked) as it arrives, and kept. When
//! modules run side by side, each printed line starts with the module's name (`[bmk] ...`),
//! so whole lines are printed as they complete.

use std::sync::Mutex;

use crate::output;
use crate::runtime::{OutputSink, Stream};
use crate::secrets::Masker;

/// Prints container output (masked) and keeps a copy of it.
pub struct Console {
    stdout: Masker,
    stderr: Masker,
    captured: Mutex<(String, String)>,
    quiet: bool,
    /// The line prefix, and the unfinished line of each stream (stdout, stderr).
    prefix: Option<(String, Mutex<(String, String)>)>,
}

impl Console {
    /// A console that masks `secrets`; `quiet` only captures; `prefix` starts each printed
    /// line with `[PREFIX] `.
    pub fn new(secrets: Vec<String>, quiet: bool, prefix: Option<String>) -> Console {
        Console {
            stdout: Masker::new(secrets.clone()),
            stderr: Masker::new(secrets),
            captured: Mutex::new((String::new(), String::new())),
            quiet,
            prefix: prefix.map(|p| (format!("[{p}] "), Mutex::new(Default::default()))),
        }
    }

    /// Prints `text`, whole lines with the prefix when there is one; `last` flushes an
    /// unfinished line too.
    fn print(&self, stream: Stream, text: &str, last: bool) {
        let Some((prefix, pending)) = &self.prefix else {
            output::stream(stream, text);
            return;
        };
        let mut pending = pending.lock().expect("the line buffer is never poisoned");
        let line = match stream {
            Stream::Stdout => &mut pending.0,
            Stream::Stderr => &mut pending.1,
        };
        line.push_str(text);
        let end = if last {
            line.len()
        } else {
            line.rfind('\n').map_or(0, |at| at + 1)
        };
        if end == 0 {
            return;
        }
        let mut printed = String::new();
        for piece in line[..end].split_inclusive('\n') {
            printed.push_str(prefix);
            printed.push_str(piece);
        }
        if !printed.ends_with('\n') {
            printed.push('\n');
        }
        line.drain(..end);
        output::stream(stream, &printed);
    }
}

impl Console {
    fn emit(&self, stream: Stream, text: &str) {
        if text.is_empty() {
            return;
        }
        if !self.quiet {
            self.print(stream, text, false);
        }
        let mut captured = self
            .captured
            .lock()
            .expect("the capture buffer is never poisoned");
        match stream {
            Stream::Stdout => captured.0.push_str(text),
            Stream::Stderr => captured.1.push_str(text),
        }
    }

    /// Whether a secret was masked in what the container printed.
    pub fn masked(&self) -> bool {
        self.stdout.masked() || self.stderr.masked()
    }

    /// Flushes what the maskers held back and returns everything captured: (stdout, stderr).
    pub fn finish(&self) -> (String, String) {
        self.emit(Stream::Stdout, &self.stdout.finish());
        self.emit(Stream::Stderr, &self.stderr.finish());
        if !self.quiet {
            self.print(Stream::Stdout, "", true);
            self.print(Stream::Stderr, "", true);
        }
        std::mem::take(
            &mut *self
                .captured
                .lock()
                .expect("the capture buffer is never poisoned"),
        )
    }
}

impl OutputSink for Console {
    fn write(&self, stream: Stream, bytes: &[u8]) {
        let masker = match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        };
        self.emit(stream, &masker.feed(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefixed_console_captures_the_output_as_the_module_wrote_it() {
        let console = Console::new(vec!["hunter2".into()], false, Some("bmk".into()));
        console.write(Stream::Stdout, b"one\ntw");
        console.write(Stream::Stdout, b"o hunter2\nthree");
        let (stdout, stderr) = console.finish();
        assert_eq!(stdout, "one\ntwo ***\nthree");
        assert_eq!(stderr, "");
    }
}
