//! CSV lines (RFC 4180): fields with a comma, a quote or a line break are quoted.

/// Appends one line of `fields` to `out`.
pub(crate) fn line(out: &mut String, fields: &[String]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_that_need_it_are_quoted() {
        let mut out = String::new();
        super::line(&mut out, &["a".into(), "b,c".into(), "say \"x\"".into()]);
        assert_eq!(out, "a,\"b,c\",\"say \"\"x\"\"\"\n");
    }
}
