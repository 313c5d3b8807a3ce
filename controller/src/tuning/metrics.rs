//! Katib's StdOut metrics collector: `name=value` pairs in the primary container's output
//! (Katib's default filter `([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)`), kept in order.

/// Every `name=value` pair of one output line whose value is a number.
pub fn parse_line(line: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'|' || b == b'-';
    let mut i = 0;
    while i < bytes.len() {
        let Some(eq) = line[i..].find('=').map(|e| e + i) else {
            break;
        };
        // The name: name characters right before '=' (spaces allowed between).
        let mut end = eq;
        while end > i && bytes.get(end - 1) == Some(&b' ') {
            end -= 1;
        }
        let mut start = end;
        while start > i && bytes.get(start - 1).is_some_and(|b| is_name(*b)) {
            start -= 1;
        }
        // The value: a number right after '=' (spaces allowed between).
        let mut v = eq + 1;
        while bytes.get(v) == Some(&b' ') {
            v += 1;
        }
        let mut w = v;
        while bytes
            .get(w)
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        {
            w += 1;
        }
        if start < end {
            if let Ok(x) = line[v..w].parse::<f64>() {
                if x.is_finite() {
                    out.push((line[start..end].to_string(), x));
                }
            }
        }
        i = eq + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn pairs_are_found_as_katib_finds_them() {
        assert_eq!(
            parse_line("epoch 3: accuracy=0.91 loss = 1.5e-2 note=high"),
            vec![("accuracy".to_string(), 0.91), ("loss".to_string(), 0.015)]
        );
        assert_eq!(
            parse_line("Validation-accuracy=0.5"),
            vec![("Validation-accuracy".to_string(), 0.5)]
        );
        assert!(parse_line("no metrics here").is_empty());
        assert!(parse_line("=3 a==").is_empty());
    }
}
