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
    let start = match src.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => {
            src.len() - rest.trim_start_matches([' ', '\t']).len()
        }
        _ => 0,
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
        if key.contains(char::is_whitespace) {
            return Err(dotenv_error(line, "key cannot contain a space".to_string()));
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
    let (raw, close) = quoted(body, quote).ok_or_else(|| {
        let first_line = trimmed.lines().next().unwrap_or_default();
        dotenv_error(line, format!("unterminated quoted value {first_line}"))
    })?;
    let value = if quote == '\'' {
        raw
    } else {
        substitute(&expand_escapes(&raw), lookup).map_err(|e| dotenv_error(line, e.to_string()))?
    };
    Ok((value, skipped + 1 + close + 1))
}

/// The text inside quotes and the index of the closing quote. As in compose-go, in both
/// kinds of quotes a backslash before the quote character escapes it (and is dropped);
/// a backslash before anything else is kept for [`expand_escapes`].
fn quoted(body: &str, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if c == quote {
            if !escaped {
                return Some((out, i));
            }
            escaped = false;
        } else if escaped {
            escaped = false;
            out.push('\\');
        } else if c == '\\' {
            escaped = true;
            continue;
        }
        out.push(c);
    }
    None
}

/// compose-go's escapes in double quotes: Go's `\a \b \f \n \r \t \v \" \\`, octal
/// `\0NNN`, and `\$` for a literal dollar (made `$$` for the interpolation that follows).
/// Any other backslash stays as written.
fn expand_escapes(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (text, used) = escape(after);
        out.push_str(&text);
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// One escape after its backslash: the text it stands for and how many bytes it used.
fn escape(after: &str) -> (String, usize) {
    let Some(c) = after.chars().next() else {
        return ("\\".to_string(), 0);
    };
    let simple = match c {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '"' => Some('"'),
        '\\' => Some('\\'),
        _ => None,
    };
    if let Some(ch) = simple {
        return (ch.to_string(), 1);
    }
    match c {
        '$' => ("$$".to_string(), 1),
        '0' => octal(&after[1..]),
        _ => ("\\".to_string(), 0),
    }
}

/// `\0` then up to three digits: Go's unquoting wants exactly three octal digits (at most
/// 0377); anything else is left as a backslash followed by the digits.
fn octal(digits: &str) -> (String, usize) {
    let len = digits
        .bytes()
        .take(3)
        .take_while(u8::is_ascii_digit)
        .count();
    let text = &digits[..len];
    match u8::from_str_radix(text, 8) {
        Ok(byte) if len == 3 => (char::from(byte).to_string(), 1 + len),
        _ => (format!("\\{text}"), 1 + len),
    }
}

#[cfg(test)]
mod tests;
