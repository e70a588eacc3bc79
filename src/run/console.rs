//! The console of a run: container output printed (masked) as it arrives, and kept.

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
}

impl Console {
    /// A console that masks `secrets`; `quiet` only captures.
    pub fn new(secrets: Vec<String>, quiet: bool) -> Console {
        Console {
            stdout: Masker::new(secrets.clone()),
            stderr: Masker::new(secrets),
            captured: Mutex::new((String::new(), String::new())),
            quiet,
        }
    }
}

impl Console {
    fn emit(&self, stream: Stream, text: &str) {
        if text.is_empty() {
            return;
        }
        if !self.quiet {
            output::stream(stream, text);
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
