//! The one error type of the CLI: every failure becomes one line on stderr and exit code 1.

use crate::client::{ClientError, Response};

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server answered with a problem document (or some other non-2xx answer).
    #[error("{}", problem_line(*.status, .code.as_deref(), .detail.as_deref()))]
    Problem { status: u16, code: Option<String>, detail: Option<String> },
    /// The server could not be reached.
    #[error("{0}")]
    Transport(String),
    /// No saved session for the server in use.
    #[error("not logged in; run roost login")]
    NotLoggedIn,
    /// A saved session exists, but for another server.
    #[error("not logged in to {server} (the saved session is for {saved}); run roost login --server {server}")]
    OtherServer { server: String, saved: String },
    /// The config file could not be read or written.
    #[error("{0}")]
    Config(String),
    /// The command's input cannot be used (an unknown name, no password, …).
    #[error("{0}")]
    Input(String),
}

impl CliError {
    /// The error for a non-2xx answer.
    pub fn from_response(r: &Response) -> Self {
        let text = |k: &str| r.body.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
        Self::Problem { status: r.status, code: text("code"), detail: text("detail").or_else(|| text("title")) }
    }

    /// The error for a request that got no answer, with its root cause (e.g. "Connection refused").
    pub fn transport(e: &ClientError) -> Self {
        let mut line = e.to_string();
        let mut root: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(next) = root.and_then(std::error::Error::source) {
            root = Some(next);
        }
        if let Some(cause) = root.map(ToString::to_string)
            && !line.contains(&cause)
        {
            line.push_str(": ");
            line.push_str(&cause);
        }
        Self::Transport(line)
    }

    /// The HTTP status, for a server answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Problem { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn problem_line(status: u16, code: Option<&str>, detail: Option<&str>) -> String {
    match (detail, code) {
        (Some(d), Some(c)) => format!("{d} ({c}, HTTP {status})"),
        (Some(d), None) => format!("{d} (HTTP {status})"),
        (None, Some(c)) => format!("{c} (HTTP {status})"),
        (None, None) => format!("the server answered HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_is_one_line_with_code_and_status() {
        let e = CliError::Problem {
            status: 402,
            code: Some("paid_plan_required".into()),
            detail: Some("the plan `free` is not a paid plan".into()),
        };
        assert_eq!(e.to_string(), "the plan `free` is not a paid plan (paid_plan_required, HTTP 402)");
        let bare = CliError::Problem { status: 502, code: None, detail: None };
        assert_eq!(bare.to_string(), "the server answered HTTP 502");
    }
}
