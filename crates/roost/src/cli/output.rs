//! What the CLI prints: aligned tables, `key: value` lines, and JSON.

use std::fmt::Write as _;

use serde_json::Value;

/// A table printed with aligned columns, headers in capitals.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new(headers: &[&'static str]) -> Self {
        Self { headers: headers.to_vec(), rows: Vec::new() }
    }

    /// Adds a row; cells are cleaned of control characters.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| clean(c)).collect());
    }

    /// The rendered table, or `empty` (plus a newline) when it has no rows.
    pub fn render_or(&self, empty: &str) -> String {
        if self.rows.is_empty() {
            return format!("{empty}\n");
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let headers: Vec<String> = self.headers.iter().map(|h| (*h).to_string()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(cell.chars().count());
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `key: value` lines with the values aligned.
pub fn pairs(items: &[(&str, String)]) -> String {
    let width = items.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in items {
        let _ = writeln!(out, "{:<w$}  {}", format!("{k}:"), clean(v), w = width + 1);
    }
    out
}

/// A JSON value, pretty-printed, with a final newline.
pub fn json(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// The field at `pointer` (e.g. `/user/email`) as display text: strings as they are, numbers and
/// booleans printed, `null` or missing as `-`.
pub fn field(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The field at `pointer` as a string, or "" when it is not one.
pub fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The items of a list answer: `{items: [...]}` or a bare array.
pub fn items(v: &Value) -> &[Value] {
    v.get("items").unwrap_or(v).as_array().map_or(&[], Vec::as_slice)
}

/// A note for stderr when a list answer has more pages than were fetched.
pub fn more_note(v: &Value) -> Option<String> {
    v.get("next_cursor")
        .and_then(Value::as_str)
        .map(|c| format!("note: there are more results; the next page starts at cursor {}", clean(c)))
}

/// Text from the server made safe for a terminal: control characters (escape sequences,
/// newlines) become `?`, so nothing the server says can rewrite the screen or split a line.
pub fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_aligns_columns_and_trims_line_ends() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec!["org_1".into(), "Acme".into()]);
        t.row(vec!["o".into(), "Été\u{1b}[2J".into()]);
        assert_eq!(t.render_or("none"), "ID     NAME\norg_1  Acme\no      Été?[2J\n");
        assert_eq!(Table::new(&["ID"]).render_or("no orgs"), "no orgs\n");
    }

    #[test]
    fn pairs_align_values() {
        assert_eq!(pairs(&[("id", "1".into()), ("name", "x".into())]), "id:    1\nname:  x\n");
    }

    #[test]
    fn fields_and_items() {
        let v = json!({"items": [{"a": 1, "b": null, "c": "x"}], "next_cursor": null});
        assert_eq!(items(&v).len(), 1);
        assert_eq!(field(&items(&v)[0], "/a"), "1");
        assert_eq!(field(&items(&v)[0], "/b"), "-");
        assert_eq!(field(&items(&v)[0], "/c"), "x");
        assert!(more_note(&v).is_none());
        assert_eq!(items(&json!([1, 2])).len(), 2);
    }
}
