//! `.env` files as compose v2 reads them (compose-go's godotenv-based `dotenv` package).

use crate::interpolate::{substitute, Lookup};
use crate::ComposeError;

/// Parses a `.env` file's text into its pairs in file order (a key set twice keeps its
/// first place and its last value). Unquoted and double-quoted values are interpolated,
/// looking a name up first in `lookup` and then among the file's earlier variables, as
/// compose-go does; a bare `KEY` line takes its value from `lookup` and is left out when
/// `lookup` has none.
pub fn parse(text: &str, lookup: Lookup) -> Result<Vec<(String, String)>, ComposeError> {
    let text = text.replace("\r\n", "\n");
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut pos = skip_blank_and_comments(&text, 0);
    while pos < text.len() {
        let line = line_at(&text, pos);
        let (key, after_key, inherited) = key_name(&text[pos..], line)?;
        pos += after_key;
        if inherited {
            if let Some(value) = lookup(&key) {
                set(&mut pairs, key, value);
            }
        } else {
            let earlier = |name: &str| {
                lookup(name).or_else(|| {
                    pairs
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                })
            };
            let (value, used) = value_of(&text[pos..], line, &earlier)?;
            pos += used;
            set(&mut pairs, key, value);
        }
        pos = skip_blank_and_comments(&text, pos);
    }
    Ok(pairs)
}

fn set(pairs: &mut Vec<(String, String)>, key: String, value: String) {
    match pairs.iter_mut().find(|(k, _)| *k == key) {
        Some(pair) => pair.1 = value,
        None => pairs.push((key, value)),
    }
}

fn line_at(text: &str, pos: usize) -> usize {
    1 + text[..pos].matches('\n').count()
}

fn dotenv_error(line: usize, message: String) -> ComposeError {
    ComposeError::Dotenv { line, message }
}

/// Skips whitespace and whole-line `#` comments; a comment may also follow a quoted value.
fn skip_blank_and_comments(text: &str, mut pos: usize) -> usize {
    loop {
        let rest = &text[pos..];
        let trimmed = rest.trim_start();
        pos += rest.len() - trimmed.len();
        if !trimmed.starts_with('#') {
            return pos;
        }
        pos += trimmed.find('\n').map_or(trimmed.len(), |nl| nl + 1);
    }
}

/// The key at the start of `src`: returns it, how many bytes it and its separator took,
/// and whether the line had no value (`KEY` alone: inherited from the lookup).
/// compose-go accepts `=` and, for YAML-style files, `:` as separators.
fn key_name(src: &str, line: usize) -> Result<(String, usize, bool), ComposeError> {
    let start = match src.strip_prefix("export ") {
        Some(rest) => src.len() - rest.trim_start_matches([' ', '\t']).len(),
        None => 0,
    };
    for (i, c) in src[start..].char_indices() {
        let (inherited, end) = match c {
            '=' | ':' => (false, i),
            '\n' => (true, i),
            _ if c.is_whitespace() || c.is_alphanumeric() || "_.-[]".contains(c) => continue,
            _ => {
                // Go's %q quotes the character as a string, with double quotes.
                let (c, first_line) = (c.to_string(), src.lines().next().unwrap_or_default());
                return Err(dotenv_error(
                    line,
                    format!("unexpected character {c:?} in variable name {first_line:?}"),
                ));
            }
        };
        let key = src[start..start + end].trim();
        if key.is_empty() {
            return Err(dotenv_error(line, "zero length string".to_string()));
        }
        return Ok((key.to_string(), start + end + c.len_utf8(), inherited));
    }
    // A last line without separator nor newline is a bare key too.
    let key = src[start..].trim();
    Ok((key.to_string(), src.len(), true))
}

/// The value at the start of `src` (just after the separator): returns it and how many
/// bytes it took.
fn value_of(src: &str, line: usize, lookup: Lookup) -> Result<(String, usize), ComposeError> {
    let trimmed = src.trim_start_matches([' ', '\t']);
    let skipped = src.len() - trimmed.len();
    let quote = match trimmed.chars().next() {
        Some(q @ ('"' | '\'')) => q,
        _ => {
            let end = trimmed.find('\n').unwrap_or(trimmed.len());
            // An inline comment needs a space before its `#`: `a#b` is a value.
            let value = trimmed[..end].split(" #").next().unwrap_or_default();
            let value = substitute(value.trim_end(), lookup)
                .map_err(|e| dotenv_error(line, e.to_string()))?;
            return Ok((value, skipped + end));
        }
    };
    let body = &trimmed[1..];
    let close = closing_quote(body, quote).ok_or_else(|| {
        let first_line = trimmed.lines().next().unwrap_or_default();
        dotenv_error(line, format!("unterminated quoted value {first_line}"))
    })?;
    let raw = &body[..close];
    let value = if quote == '\'' {
        raw.to_string()
    } else {
        substitute(&expand_escapes(raw), lookup).map_err(|e| dotenv_error(line, e.to_string()))?
    };
    Ok((value, skipped + 1 + close + 1))
}

/// A quote closes the value unless a backslash precedes it.
fn closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut previous = None;
    for (i, c) in body.char_indices() {
        if c == quote && previous != Some('\\') {
            return Some(i);
        }
        previous = Some(c);
    }
    None
}

/// godotenv's escapes in double quotes: `\n` and `\r` become the control characters, any
/// other backslash-escaped character but `$` stands for itself (`\$` is kept for the
/// interpolation that follows).
fn expand_escapes(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('$') => out.push_str("\\$"),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests;
