//! Text from outside the process (a component's errors and ids, Azure's messages), made safe
//! to write into a log line or a terminal.
//!
//! A component is not trusted, and neither is what an upstream answers: a newline in an error
//! message would forge a log line of its own in the console format, and escape sequences
//! would drive the operator's terminal. So control characters (C0, DEL, C1) and the Unicode
//! bidirectional overrides are escaped wherever such text is turned into host messages
//! ([`escaped`]) and, as a second line of defence, in every field of every console log line
//! ([`escaping_fields`]); the JSON format escapes by itself.

use std::borrow::Cow;
use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::FormatFields;

fn needs_escaping(character: char) -> bool {
    character.is_control() || matches!(character, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with control characters and bidirectional overrides written as Rust escapes
/// (`\n`, `\u{1b}`); other text, non-ASCII letters included, is kept as it is.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escaping) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        match character {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ if needs_escaping(character) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(character));
            }
            _ => out.push(character),
        }
    }
    Cow::Owned(out)
}

/// The console log's field formatter: `name=value` as usual, with every value escaped.
pub fn escaping_fields() -> impl for<'writer> FormatFields<'writer> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        if field.name() == "message" {
            write!(writer, "{}", escaped(&text))
        } else {
            write!(writer, "{field}={}", escaped(&text))
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped_and_other_text_kept() {
        assert_eq!(escaped("forged\nINFO all good"), "forged\\nINFO all good");
        assert_eq!(escaped("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(escaped("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(escaped("Zoë's group, 100 %"), "Zoë's group, 100 %");
        assert!(matches!(escaped("plain"), Cow::Borrowed(_)));
    }
}
