//! Who and where e runs, for the records that several machines share (history rows, the
//! holder of a backend's lock).

/// `user@host`: who ran a command, on which machine.
pub fn who() -> String {
    let user = super::postgres::settings::os_user().unwrap_or_else(|_| "unknown".into());
    format!("{user}@{}", host_name())
}

/// This machine's name.
pub fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `buffer.len()` bytes into our buffer.
    let code = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if code != 0 {
        return "unknown".into();
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}
