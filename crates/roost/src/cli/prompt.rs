//! Reading answers from the person at the terminal (or from a pipe): one line each.

use std::io::{BufRead, IsTerminal, Write};

use super::error::CliError;

/// One line of stdin, without its line ending; `None` at end of input. When stdin is a terminal,
/// `prompt` is shown on stderr first, and with `secret` the typed text is not echoed.
pub fn line(prompt: &str, secret: bool) -> Result<Option<String>, CliError> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let hide = terminal && secret && echo(false);
    let mut buf = String::new();
    let read = stdin.lock().read_line(&mut buf);
    if hide {
        echo(true);
        eprintln!();
    }
    let n = read.map_err(|e| CliError::Input(format!("cannot read from stdin: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(buf.trim_end_matches(['\n', '\r']).to_string()))
}

/// Turns the terminal's echo on or off with `stty`; whether that worked.
fn echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A line that must not be empty: `missing` says what to do instead.
pub fn required(prompt: &str, secret: bool, missing: &str) -> Result<String, CliError> {
    match line(prompt, secret)? {
        Some(l) if !l.trim().is_empty() => Ok(l),
        _ => Err(CliError::Input(missing.to_string())),
    }
}
