//! Input rules shared by every endpoint. Each check appends to a list of field errors, so one
//! response can name every problem at once.

use serde::Serialize;

/// One invalid field, as the 422 `invalid_request` response lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Collects field errors.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<FieldError>);

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD: usize = 10;
/// Longest accepted password: hashing cost must stay bounded.
pub const MAX_PASSWORD: usize = 1024;
/// Longest display name.
pub const MAX_NAME: usize = 200;

impl Errors {
    /// Records that `field` is invalid.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }

    /// Ok when nothing was recorded.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() { Ok(()) } else { Err(self.0) }
    }

    /// A display name: 1 to 200 characters, not blank, no control characters. Returns it trimmed.
    pub fn name(&mut self, field: &str, value: &str) -> String {
        let v = value.trim();
        if v.is_empty() {
            self.add(field, "must not be blank");
        } else if v.chars().count() > MAX_NAME {
            self.add(field, format!("must be at most {MAX_NAME} characters"));
        } else if v.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
        v.to_string()
    }

    /// An email address. Returns it trimmed and lowercased: emails are unique case-insensitively.
    pub fn email(&mut self, field: &str, value: &str) -> String {
        let v = value.trim().to_lowercase();
        let ok = v.len() <= 254
            && v.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !domain.starts_with('.')
            })
            && !v.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            self.add(field, "must be an email address");
        }
        v
    }

    /// A new password: 10 to 1024 characters.
    pub fn password(&mut self, field: &str, value: &str) {
        let n = value.chars().count();
        if n < MIN_PASSWORD {
            self.add(field, format!("must be at least {MIN_PASSWORD} characters"));
        } else if n > MAX_PASSWORD {
            self.add(field, format!("must be at most {MAX_PASSWORD} characters"));
        }
    }

    /// A resource kind: 1 to 64 of `a-z`, `0-9`, `_` and `-`.
    pub fn kind(&mut self, field: &str, value: &str) {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            self.add(field, "must be 1 to 64 of a-z, 0-9, _ and -");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_accept_the_good_and_name_the_bad() {
        let mut e = Errors::default();
        assert_eq!(e.email("email", "  Ada@Example.COM "), "ada@example.com");
        assert_eq!(e.name("name", " Ada "), "Ada");
        e.password("password", "correct horse");
        e.kind("kind", "postgres");
        assert!(e.finish().is_ok());

        let mut e = Errors::default();
        e.email("email", "not-an-email");
        e.email("email2", "a@b@c");
        e.name("name", "   ");
        e.name("name2", &"x".repeat(201));
        e.name("name3", "bad\u{0}name");
        e.password("password", "short");
        e.password("password2", &"p".repeat(1025));
        e.kind("kind", "Postgres");
        let fields: Vec<_> = e.finish().expect_err("all invalid").into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["email", "email2", "name", "name2", "name3", "password", "password2", "kind"]);
    }
}
