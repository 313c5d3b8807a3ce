//! Trial success and failure conditions: the subset of GJSON paths Katib's conditions use,
//! evaluated over the trial's resource as JSON. A condition holds when the path finds a value
//! that is not null and not an empty list.
//!
//! Supported: `a.b.0` (members and list indexes), `#(key=="value")` (the first list element
//! whose member equals the string; `!=` too), `#(key=="value")#` (all of them), `#` (a list's
//! length), and `|` (the rest of the path applied to the result so far), as in Katib's
//! defaults `status.conditions.#(type=="Complete")#|#(status=="True")#`.

use serde_json::Value;

/// Splits `text` at `sep` outside parentheses and double quotes.
fn split_top(text: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    let mut prev = '\0';
    for (i, c) in text.char_indices() {
        match c {
            '"' if prev != '\\' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == sep && !quoted && depth == 0 => {
                out.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
        prev = c;
    }
    out.push(&text[start..]);
    out
}

/// A query `key=="value"` / `key!="value"`.
fn query(q: &str) -> Result<(String, bool, String), String> {
    let (key, eq, value) = if let Some((k, v)) = q.split_once("!=") {
        (k, false, v)
    } else if let Some((k, v)) = q.split_once("==") {
        (k, true, v)
    } else {
        return Err(format!(
            "query #({q}): expected key==\"value\" or key!=\"value\""
        ));
    };
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Ok((key.trim().to_string(), eq, value.to_string()))
}

fn matches(item: &Value, key: &str, eq: bool, value: &str) -> bool {
    let found = match item.get(key) {
        Some(Value::String(s)) => s == value,
        Some(Value::Bool(b)) => b.to_string() == value,
        Some(Value::Number(n)) => n.to_string() == value,
        _ => false,
    };
    found == eq
}

fn step(v: &Value, seg: &str) -> Result<Value, String> {
    if seg == "#" {
        return Ok(v
            .as_array()
            .map_or(Value::Null, |a| Value::from(a.len() as u64)));
    }
    if let Some(inner) = seg.strip_prefix("#(") {
        let (q, all) = match inner.strip_suffix(")#") {
            Some(q) => (q, true),
            None => (
                inner
                    .strip_suffix(')')
                    .ok_or_else(|| format!("unclosed query {seg:?}"))?,
                false,
            ),
        };
        let (key, eq, value) = query(q)?;
        let items = v.as_array().cloned().unwrap_or_default();
        let mut hits = items.into_iter().filter(|i| matches(i, &key, eq, &value));
        return Ok(if all {
            Value::Array(hits.collect())
        } else {
            hits.next().unwrap_or(Value::Null)
        });
    }
    Ok(match v {
        Value::Object(m) => m.get(seg).cloned().unwrap_or(Value::Null),
        Value::Array(a) => seg
            .parse::<usize>()
            .ok()
            .and_then(|i| a.get(i).cloned())
            .unwrap_or(Value::Null),
        _ => Value::Null,
    })
}

/// The value `path` finds in `doc` (Null when none).
pub fn get(doc: &Value, path: &str) -> Result<Value, String> {
    let mut current = doc.clone();
    for part in split_top(path.trim(), '|') {
        for seg in split_top(part, '.') {
            if seg.is_empty() {
                return Err(format!("empty segment in {path:?}"));
            }
            current = step(&current, seg)?;
        }
    }
    Ok(current)
}

/// Whether the condition `path` holds over `doc`.
pub fn holds(doc: &Value, path: &str) -> Result<bool, String> {
    Ok(match get(doc, path)? {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn katibs_default_job_conditions() {
        let done = json!({"status": {"conditions": [
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"}]}});
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        let running = json!({"status": {"active": 1}});
        let ok = r#"status.conditions.#(type=="Complete")#|#(status=="True")#"#;
        let bad = r#"status.conditions.#(type=="Failed")#|#(status=="True")#"#;
        assert!(holds(&done, ok).expect("valid"));
        assert!(!holds(&done, bad).expect("valid"));
        assert!(holds(&failed, bad).expect("valid"));
        assert!(!holds(&running, ok).expect("valid") && !holds(&running, bad).expect("valid"));
        let not_yet = json!({"status": {"conditions": [{"type": "Complete", "status": "False"}]}});
        assert!(!holds(&not_yet, ok).expect("valid"));
    }

    #[test]
    fn paths_indexes_counts_and_errors() {
        let doc = json!({"status": {"phase": "Succeeded", "list": [{"a": "x"}, {"a": "y"}]}});
        assert_eq!(get(&doc, "status.phase").expect("ok"), json!("Succeeded"));
        assert_eq!(get(&doc, "status.list.1.a").expect("ok"), json!("y"));
        assert_eq!(get(&doc, "status.list.#").expect("ok"), json!(2));
        assert_eq!(
            get(&doc, r#"status.list.#(a!="x").a"#).expect("ok"),
            json!("y")
        );
        assert!(!holds(&doc, "status.missing").expect("ok"));
        assert!(get(&doc, "status..phase").is_err());
        assert!(get(&doc, "status.list.#(a)").is_err());
        assert!(get(&doc, r#"status.list.#(a=="x""#).is_err());
    }
}
