//! Protobuf text format as Triton's tooling writes it. Protobuf's C++ parser lets a repeated
//! message field in list form omit its colon (`input [ { ... } ]`), and every Triton example does
//! so; prost-reflect insists on `input: [ ... ]`. [`add_list_colons`] inserts the colon, leaving
//! strings and comments untouched. [`parse_model_config`] parses a whole `config.pbtxt` against
//! the built-in descriptors.

use crate::grpc::inference::ModelConfig;
use crate::grpc::FILE_DESCRIPTOR_SET;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use std::sync::LazyLock;

static POOL: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(FILE_DESCRIPTOR_SET).ok());

/// The built-in descriptor of a message (`inference.ModelConfig`, ...).
pub fn descriptor(full_name: &str) -> Result<MessageDescriptor, String> {
    POOL.as_ref()
        .and_then(|p| p.get_message_by_name(full_name))
        .ok_or_else(|| format!("built-in descriptor of {full_name} is missing"))
}

/// Parses protobuf text format as Triton writes `config.pbtxt`; the error is the parser's
/// message (line and column).
pub fn parse_model_config(text: &str) -> Result<ModelConfig, String> {
    let msg = DynamicMessage::parse_text_format(
        descriptor("inference.ModelConfig")?,
        &add_list_colons(text),
    )
    .map_err(|e| e.to_string())?;
    msg.transcode_to::<ModelConfig>().map_err(|e| e.to_string())
}

#[derive(PartialEq, Clone, Copy)]
enum Prev {
    /// Start of input, `{`, `,` , `;` or a value: what a field name can follow.
    FieldStart,
    /// `:` — the next identifier is a value (an enum), not a field name.
    Colon,
    /// An identifier in field-name position.
    FieldName,
    /// An identifier in value position, or any other token.
    Other,
}

/// Inserts `:` between a field name and a `[` that opens its list.
pub fn add_list_colons(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    let mut prev = Prev::FieldStart;
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == '\\' {
                        if let Some(e) = chars.next() {
                            out.push(e);
                        }
                    } else if d == c {
                        break;
                    }
                }
                prev = Prev::FieldStart;
            }
            '#' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '[' => {
                if prev == Prev::FieldName {
                    out.push(':');
                }
                out.push(c);
                prev = Prev::Other;
            }
            ':' => {
                out.push(c);
                prev = Prev::Colon;
            }
            '{' | ',' | ';' | '}' | ']' => {
                out.push(c);
                prev = Prev::FieldStart;
            }
            c if c.is_whitespace() => out.push(c),
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == '+' => {
                let mut word = String::from(c);
                while let Some(&d) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' || d == '.' || d == '-' || d == '+' {
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let is_ident = word
                    .chars()
                    .next()
                    .is_some_and(|f| f.is_alphabetic() || f == '_');
                prev = match prev {
                    Prev::FieldStart if is_ident => Prev::FieldName,
                    // A value (after ':' or a field name) ends a field; the next word names one.
                    _ => Prev::FieldStart,
                };
                out.push_str(&word);
            }
            other => {
                out.push(other);
                prev = Prev::Other;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_colons_only_before_lists_of_fields() {
        assert_eq!(
            add_list_colons("input [ { name: \"a\" dims: [ 4 ] } ]"),
            "input :[ { name: \"a\" dims: [ 4 ] } ]"
        );
        assert_eq!(add_list_colons("output\n[\n{ }\n]"), "output\n:[\n{ }\n]");
        assert_eq!(
            add_list_colons("name: \"x [ y\"\n# input [ comment\n"),
            "name: \"x [ y\"\n# input [ comment\n"
        );
        assert_eq!(
            add_list_colons("data_type: TYPE_FP32 dims [1]"),
            "data_type: TYPE_FP32 dims :[1]"
        );
        assert_eq!(add_list_colons("a: [1, 2] b: 3"), "a: [1, 2] b: 3");
    }
}
