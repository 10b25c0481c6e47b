//! Variable interpolation with compose-go's `template` semantics.

use serde_json::Value;

use crate::ComposeError;

/// How a variable's value is looked up; passed in so loading never reads the process
/// environment behind the caller's back (the CLI layers shell env over `.env`).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Interpolates every string in the tree (keys stay as they are, as in compose-go).
/// Errors name the path of the value, with `[]` for a sequence item as compose-go does.
pub fn interpolate(value: &Value, lookup: Lookup) -> Result<Value, ComposeError> {
    let mut path = Vec::new();
    walk(value, lookup, &mut path)
}

fn walk(value: &Value, lookup: Lookup, path: &mut Vec<String>) -> Result<Value, ComposeError> {
    match value {
        Value::String(s) => {
            substitute(s, lookup)
                .map(Value::String)
                .map_err(|source| ComposeError::Interpolate {
                    path: path.join("."),
                    source: Box::new(source),
                })
        }
        Value::Array(items) => {
            path.push("[]".to_string());
            let out: Result<Vec<Value>, _> =
                items.iter().map(|item| walk(item, lookup, path)).collect();
            path.pop();
            out.map(Value::Array)
        }
        Value::Object(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            for (key, item) in map {
                path.push(key.clone());
                let item = walk(item, lookup, path);
                path.pop();
                out.insert(key.clone(), item?);
            }
            Ok(Value::Object(out))
        }
        other => Ok(other.clone()),
    }
}

/// Substitutes one string. A `$` not followed by `$`, `{` or a name stays literal, as
/// compose-go's pattern does not match it.
pub fn substitute(template: &str, lookup: Lookup) -> Result<String, ComposeError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let close = closing_brace(body).ok_or_else(|| invalid(template))?;
            out.push_str(&braced(&body[..close], template, lookup)?);
            rest = &body[close + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(&lookup(&after[..len]).unwrap_or_default());
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn invalid(template: &str) -> ComposeError {
    ComposeError::InvalidTemplate {
        template: template.to_string(),
    }
}

/// Index of the `}` closing a `${`, counting nested `${` (only those nest in compose-go,
/// so a bare `{` in a default does not need a matching `}`).
fn closing_brace(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut open = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'}' {
            open -= 1;
            if open == 0 {
                return Some(i);
            }
        } else if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            open += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

/// Length of the variable name at the start of `s`: `[_A-Za-z][_A-Za-z0-9]*`.
fn name_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return 0,
    }
    bytes
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count()
}

/// The inside of one `${...}`: a name, then nothing or one of compose's six operators.
/// The operand is only substituted when it is used, as compose-go does, so an unused
/// `${B:?}` inside a default does not fail.
fn braced(expr: &str, template: &str, lookup: Lookup) -> Result<String, ComposeError> {
    let len = name_len(expr);
    if len == 0 {
        return Err(invalid(template));
    }
    let (name, op) = expr.split_at(len);
    let value = lookup(name);
    // `:` makes an empty value count as unset.
    let (unset_only, op) = match op.strip_prefix(':') {
        Some(op) => (false, op),
        None => (true, op),
    };
    if op.is_empty() {
        return if unset_only {
            Ok(value.unwrap_or_default())
        } else {
            Err(invalid(template))
        };
    }
    let missing = match &value {
        None => true,
        Some(v) => v.is_empty() && !unset_only,
    };
    let mut chars = op.chars();
    let operator = chars.next();
    let operand = chars.as_str();
    match operator {
        Some('-') if missing => substitute(operand, lookup),
        Some('-') => Ok(value.unwrap_or_default()),
        Some('?') if missing => Err(ComposeError::MissingRequired {
            variable: name.to_string(),
            reason: substitute(operand, lookup)?,
        }),
        Some('?') => Ok(value.unwrap_or_default()),
        Some('+') if missing => Ok(String::new()),
        Some('+') => substitute(operand, lookup),
        _ => Err(invalid(template)),
    }
}

#[cfg(test)]
mod tests;
