//! Running `e` on a pseudo-terminal, as a person at a terminal would: its standard input,
//! output and error are the terminal, and the test types an answer once a prompt appears.

use std::io::{Read as _, Write as _};
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What `e` printed on the terminal, and its exit code.
pub struct Screen {
    /// Everything e wrote on the terminal (stdout and stderr together).
    pub text: String,
    /// Its exit code.
    pub code: Option<i32>,
}

/// Runs `command` on a new pseudo-terminal; when `prompt` appears on it, types `answer` and
/// Enter. Gives up after two minutes.
pub fn run(mut command: Command, prompt: &str, answer: &str) -> Screen {
    let (mut master, slave) = open();
    let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the terminal"));
    command
        .stdin(stdio(&slave))
        .stdout(stdio(&slave))
        .stderr(stdio(&slave));
    let mut child = command.spawn().expect("the e binary runs");
    // Only the child holds the terminal now (the command kept copies too): its exit ends the
    // reads below.
    drop(command);
    drop(slave);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let mut master = master.try_clone().expect("dup the master");
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // A read fails (EIO) once the child closed the terminal.
            while let Ok(n) = master.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        })
    };
    let started = Instant::now();
    let mut answered = false;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait for e") {
            break status.code();
        }
        let shown = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        if !answered && shown.contains(prompt) {
            master
                .write_all(format!("{answer}\r").as_bytes())
                .expect("type the answer");
            answered = true;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "e did not finish on the terminal:\n{shown}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    reader.join().expect("the reader");
    let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    Screen { text, code }
}

/// A new pseudo-terminal: its master and its slave.
fn open() -> (std::fs::File, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors into the integers it is given, and nothing else
    // (no name buffer, default terminal settings and size).
    let done = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(done, 0, "openpty failed");
    // SAFETY: both descriptors were just opened for us and are owned by nothing else.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            OwnedFd::from_raw_fd(slave),
        )
    }
}
