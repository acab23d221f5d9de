//! Removal of characters that XML 1.0 cannot carry.
//!
//! XML 1.0 §2.2 allows `#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
//! [#x10000-#x10FFFF]`; neither quick-xml nor the feed crates filter the rest
//! (tafia/quick-xml#368), and one such byte makes a whole feed unreadable. Rust
//! strings cannot hold surrogates, so what is left to remove is the C0 controls
//! other than tab, newline and carriage return, and U+FFFE / U+FFFF.

/// Whether XML 1.0 allows `c` in a document.
pub fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// What one pass over a text found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextScan {
    /// A character XML 1.0 forbids.
    pub forbidden: bool,
    /// A carriage return (which XML parsers turn into a line feed).
    pub carriage_return: bool,
}

/// Scans `s` bytewise, not charwise: in UTF-8 a C0 control is its own byte,
/// and U+FFFE / U+FFFF both start with 0xEF, so clean text (nearly all of it)
/// costs one vectorisable pass.
pub fn scan_text(s: &str) -> TextScan {
    let bytes = s.as_bytes();
    // Branch-free per chunk so the compiler vectorises it; `any` would not.
    let (control, carriage_return) = bytes.chunks(64).fold((false, false), |(f, c), chunk| {
        chunk.iter().fold((f, c), |(f, c), &b| {
            (
                f | (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r'),
                c | (b == b'\r'),
            )
        })
    });
    let forbidden =
        control || (bytes.contains(&0xEF) && (s.contains('\u{FFFE}') || s.contains('\u{FFFF}')));
    TextScan {
        forbidden,
        carriage_return,
    }
}

/// Whether `s` holds a character XML 1.0 forbids.
pub fn has_forbidden(s: &str) -> bool {
    scan_text(s).forbidden
}

/// Returns `s` without the characters XML 1.0 forbids, and how many were removed.
/// Text without any is returned as it came, without copying.
pub fn strip_forbidden(s: String) -> (String, usize) {
    if !has_forbidden(&s) {
        return (s, 0);
    }
    let before = s.chars().count();
    let clean: String = s.chars().filter(|&c| is_xml_char(c)).collect();
    let removed = before - clean.chars().count();
    (clean, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_tab_newline_cr_and_removes_other_controls() {
        let (s, n) = strip_forbidden("a\tb\nc\rd\u{0}e\u{1}f\u{b}g\u{1f}h".to_owned());
        assert_eq!(s, "a\tb\nc\rdefgh");
        assert_eq!(n, 4);
    }

    #[test]
    fn removes_non_characters_fffe_ffff_but_keeps_neighbours() {
        let (s, n) = strip_forbidden("x\u{FFFE}y\u{FFFF}z\u{FFFD}\u{10000}".to_owned());
        assert_eq!(s, "xyz\u{FFFD}\u{10000}");
        assert_eq!(n, 2);
    }

    #[test]
    fn leaves_clean_text_untouched() {
        let text = "Café & <b>\"quotes\"</b> ]]> 🦀 — ok".to_owned();
        assert_eq!(strip_forbidden(text.clone()), (text, 0));
    }

    proptest! {
        #[test]
        fn output_is_always_xml_and_keeps_every_allowed_char(s in any::<String>()) {
            prop_assert_eq!(has_forbidden(&s), !s.chars().all(is_xml_char));
            let (clean, removed) = strip_forbidden(s.clone());
            prop_assert!(clean.chars().all(is_xml_char));
            let expected: String = s.chars().filter(|&c| is_xml_char(c)).collect();
            prop_assert_eq!(removed, s.chars().count() - expected.chars().count());
            prop_assert_eq!(clean, expected);
        }
    }
}
