//! Finding the syntax errors of a TOML document in memory that does not grow
//! with their number. It reports only what is wrong with the text; what the
//! text means (a key defined twice, a wrong type) is `document`'s to find, and
//! only once this finds nothing. It reads no files and keeps no events.
//!
//! toml's recoverable parse keeps a `toml::de::Error` (about 200 bytes with
//! its message) for every error, and a 1 MiB file of `=` lines holds 1.5
//! million. So this runs toml's own lexer and parser (`toml_parser`, which
//! `toml` parses with, so the errors, their positions and their words are
//! toml's), decodes every key and value as toml does, keeps the first
//! [`MAX_PROBLEMS`] and counts the rest. `document` runs it before toml's
//! parse, not after a failed strict one: a strict parse stores every event and
//! costs more than this whole scan. Only a text without syntax errors reaches
//! toml's recoverable parse, for duplicate keys and tables; its errors still
//! take memory each, about 92 MB for a 1 MiB file of `a=1` lines.
//!
//! `feedsmith check` with one 1 MiB feed file, release build, peak RSS and
//! median time of 5 runs (before: toml's recoverable parse alone; strict
//! first: `DeTable::parse`, then this scan when it fails):
//!
//! | feed file                        | before          | strict first   | this          |
//! | -------------------------------- | --------------- | -------------- | ------------- |
//! | `=` lines (1 048 576 errors)     | 331 MB, 0.65 s  | 89 MB, 0.26 s  | 40 MB, 0.08 s |
//! | random `abc=[]"\n {}#`           | 29 MB, 0.03 s   | 30 MB, 0.06 s  | 20 MB, 0.03 s |
//! | `a = 1` lines (duplicate keys)   | 81 MB, 0.11 s   | 92 MB, 0.23 s  | 84 MB, 0.16 s |
//! | `a=1` lines (duplicate keys)     | 91 MB, 0.15 s   | 100 MB, 0.27 s | 92 MB, 0.19 s |
//! | valid, 1 MiB tags list           | 39 MB, 0.08 s   | 45 MB, 0.11 s  | 40 MB, 0.09 s |
//! | the shipped config (no big file) | 13 MB, 0.00 s   | 15 MB, 0.00 s  | 14 MB, 0.00 s |

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use toml_parser::decoder::{Encoding, ScalarKind};
use toml_parser::parser::{Event, EventKind, EventReceiver, RecursionGuard};
use toml_parser::{ErrorSink, Expected, ParseError, Span};

use super::document::{MAX_PROBLEMS, Problem, Problems, Source};

/// The nesting of arrays and inline tables toml allows (its private `LIMIT`):
/// the guard reports deeper nesting as toml does, and keeps a hostile file from
/// recursing without end.
const MAX_DEPTH: u32 = 80;

/// The errors in the text of `source`: the first [`MAX_PROBLEMS`] in file
/// order and a count of the rest. These are the parser's own and those of
/// decoding each key, value, comment and newline it emitted (an empty key, a
/// bad escape, a malformed number): everything toml reports except what a
/// document means, such as a key defined twice, which `document` looks for
/// only in a text without these (as it looks for wrong types only in a
/// document without duplicate keys). Empty when the text has none.
pub fn syntax_errors(source: &Source) -> Problems {
    let text = toml_parser::Source::new(&source.text);
    // Counted first so the vector is allocated once at its exact size (24
    // bytes a token): grown by doubling from toml's guess it could end twice
    // as large, and holds the old copy too while it moves.
    let mut tokens = Vec::with_capacity(text.lex().count());
    tokens.extend(text.lex());
    let mut first = FirstErrors::default();
    let mut decoder = Decoder {
        source: text,
        scratch: String::new(),
    };
    let mut receiver = RecursionGuard::new(&mut decoder, MAX_DEPTH);
    toml_parser::parser::parse_document(&tokens, &mut receiver, &mut first);
    drop(tokens);
    let omitted = first.total - first.kept.len();
    let listed = first
        .kept
        .into_sorted_vec()
        .into_iter()
        .map(|e| Problem::at(source, e.span(), message(&e.error)));
    Problems::first(listed, omitted)
}

/// One error kept, ordered by where it is and then by when it was reported.
struct Ranked {
    /// The byte offset of the error, `None` (shown first, as `document` sorts
    /// its problems) when it has no place.
    at: Option<usize>,
    seq: usize,
    error: ParseError,
}

impl Ranked {
    fn span(&self) -> Option<std::ops::Range<usize>> {
        self.error.unexpected().map(|s| s.start()..s.end())
    }

    fn key(&self) -> (Option<usize>, usize) {
        (self.at, self.seq)
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// An [`ErrorSink`] that keeps the [`MAX_PROBLEMS`] first errors in file order
/// and counts them all. toml_parser does not promise to report in file order
/// (it did on every file tried), so the first are chosen by position, not by
/// arrival: a max-heap whose top is the last one kept.
#[derive(Default)]
struct FirstErrors {
    kept: BinaryHeap<Ranked>,
    total: usize,
}

impl ErrorSink for FirstErrors {
    fn report_error(&mut self, error: ParseError) {
        let ranked = Ranked {
            at: error.unexpected().map(|s| s.start()),
            seq: self.total,
            error,
        };
        self.total += 1;
        if self.kept.len() < MAX_PROBLEMS {
            self.kept.push(ranked);
        } else if let Some(mut last) = self.kept.peek_mut()
            && ranked < *last
        {
            *last = ranked;
        }
    }
}

/// Receives the parser's events and keeps none of them: it decodes each key,
/// value, comment and newline as toml does (its document builder and its
/// `ValidateWhitespace`), for the errors that only decoding finds.
struct Decoder<'i> {
    source: toml_parser::Source<'i>,
    /// Reused for every decoded string; only its errors matter.
    scratch: String,
}

impl<'i> Decoder<'i> {
    fn decode(
        &mut self,
        kind: EventKind,
        encoding: Option<Encoding>,
        span: Span,
        sink: &mut dyn ErrorSink,
    ) {
        let Some(raw) = self.source.get(Event::new_unchecked(kind, encoding, span)) else {
            return;
        };
        self.scratch.clear();
        match kind {
            EventKind::SimpleKey => raw.decode_key(&mut self.scratch, sink),
            EventKind::Scalar => {
                if raw.decode_scalar(&mut self.scratch, sink) == ScalarKind::DateTime
                    && let Err(e) = self.scratch.parse::<toml::value::Datetime>()
                {
                    // toml's builder checks dates after decoding, in these words.
                    sink.report_error(ParseError::new(e.to_string()).with_unexpected(span));
                }
            }
            EventKind::Comment => raw.decode_comment(sink),
            EventKind::Newline => raw.decode_newline(sink),
            _ => {}
        }
    }
}

impl EventReceiver for Decoder<'_> {
    fn simple_key(&mut self, span: Span, encoding: Option<Encoding>, error: &mut dyn ErrorSink) {
        self.decode(EventKind::SimpleKey, encoding, span, error);
    }
    fn scalar(&mut self, span: Span, encoding: Option<Encoding>, error: &mut dyn ErrorSink) {
        self.decode(EventKind::Scalar, encoding, span, error);
    }
    fn comment(&mut self, span: Span, error: &mut dyn ErrorSink) {
        self.decode(EventKind::Comment, None, span, error);
    }
    fn newline(&mut self, span: Span, error: &mut dyn ErrorSink) {
        self.decode(EventKind::Newline, None, span, error);
    }
}

/// The message toml gives a parse error (`toml::de::Error::new`, which is
/// private): the description, then what was expected.
fn message(error: &ParseError) -> String {
    let mut message = error.description().to_owned();
    if let Some(expected) = error.expected() {
        message.push_str(", expected ");
        if expected.is_empty() {
            message.push_str("nothing");
        }
        for (i, expected) in expected.iter().enumerate() {
            if i != 0 {
                message.push_str(", ");
            }
            match expected {
                Expected::Literal(literal) => message.push_str(&render_literal(literal)),
                Expected::Description(description) => message.push_str(description),
                _ => message.push_str("etc"),
            }
        }
    }
    message
}

/// How toml names an expected literal.
fn render_literal(literal: &str) -> String {
    match literal {
        "\n" => "newline".to_owned(),
        "`" => "'`'".to_owned(),
        s if s.chars().all(|c| c.is_ascii_control()) => format!("`{}`", s.escape_debug()),
        s => format!("`{s}`"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::document::{LineCol, deserialize_all};

    fn source(text: &str) -> Source {
        Source::new(PathBuf::from("t.toml"), text.to_owned())
    }

    /// toml's own errors for `text` (which keeps them all): place and message,
    /// without the duplicate keys this module leaves to `document`.
    fn toml_errors(text: &str) -> Vec<(Option<LineCol>, String)> {
        let src = source(text);
        let (_, errors) = toml::de::DeTable::parse_recoverable(text);
        let mut errors: Vec<_> = errors
            .iter()
            .filter(|e| e.message() != "duplicate key")
            .map(|e| {
                let p = Problem::at(&src, e.span(), e.message());
                (p.location.at, p.message)
            })
            .collect();
        errors.sort();
        errors
    }

    fn scanned(text: &str) -> Vec<(Option<LineCol>, String)> {
        let (listed, omitted) = syntax_errors(&source(text)).into_parts();
        assert_eq!(omitted, 0, "the cases stay under the limit");
        listed
            .into_iter()
            .map(|p| (p.location.at, p.message))
            .collect()
    }

    #[test]
    fn finds_what_toml_finds_in_the_text() {
        let deep = format!("deep = {}1{}\n", "[".repeat(90), "]".repeat(90));
        let cases = [
            "a = \"\\q\"\n",
            "a = 1__2\nb = 0x\nc = 1.e3\n",
            "when = 1979-13-01\n",
            "a = 1 # bell \u{7}\n",
            "a = 1\rb = 2\n",
            "a = \"open\nb = 'open\n",
            "\"\"\"k\"\"\" = 1\n",
            "other = [1,\n",
            "=\n  =\n",
            "[t\nx = 1\n[[u]\ny = {a = 1,}\n",
            deep.as_str(),
        ];
        for text in cases {
            let want = toml_errors(text);
            assert!(!want.is_empty(), "{text:?} is broken");
            assert_eq!(scanned(text), want, "{text:?}");
        }
    }

    #[test]
    fn finds_what_toml_skips_after_an_error() {
        // toml's document builder takes only the first value after `=`, so it
        // never decodes the empty one the parser recovers after the second.
        let text = "value = = 3\n";
        let found = scanned(text);
        let toml = toml_errors(text);
        assert!(toml.iter().all(|e| found.contains(e)), "{found:?} {toml:?}");
        let extra: Vec<_> = found.iter().filter(|e| !toml.contains(e)).collect();
        assert_eq!(
            extra,
            [&(
                Some(LineCol { line: 1, col: 10 }),
                "string values must be quoted, expected literal string".to_owned()
            )]
        );
    }

    #[test]
    fn a_sound_text_has_no_syntax_errors() {
        for text in [
            "",
            "name = \"x\"\n[inner]\nflag = true\nwhen = 1979-05-27T07:32:00Z\n",
            // Defined twice, but written correctly: for `document` to report.
            "a = 1\na = 2\n[t]\n[t]\n",
        ] {
            assert_eq!(scanned(text), Vec::new(), "{text:?}");
        }
    }

    #[test]
    fn two_hundred_thousand_syntax_errors_list_the_first_hundred_and_count_the_rest() {
        // Each line `=` after 0 to 6 spaces: an empty key at the `=` and a
        // missing value after it, two errors a line, at columns that vary.
        let lines = 100_000;
        let text: String = (0..lines)
            .map(|i| format!("{}=\n", " ".repeat(i % 7)))
            .collect();
        let (value, problems) = deserialize_all::<toml::Table>(&source(&text));
        assert!(value.is_none());
        let (listed, omitted) = problems.into_parts();
        assert_eq!(listed.len(), MAX_PROBLEMS);
        assert_eq!(omitted, 2 * lines - MAX_PROBLEMS);
        for (i, p) in listed.iter().enumerate() {
            let line = i / 2 + 1;
            let equals = (line - 1) % 7 + 1;
            let (col, message) = if i % 2 == 0 {
                (
                    equals,
                    "unquoted keys cannot be empty, expected letters, numbers, `-`, `_`",
                )
            } else {
                (
                    equals + 1,
                    "string values must be quoted, expected literal string",
                )
            };
            assert_eq!(p.to_string(), format!("t.toml:{line}:{col}: {message}"));
        }
        // The same as toml lists, short of the duplicate (empty) keys.
        let head: String = text
            .lines()
            .take(MAX_PROBLEMS / 2)
            .map(|l| format!("{l}\n"))
            .collect();
        let listed: Vec<_> = listed
            .into_iter()
            .map(|p| (p.location.at, p.message))
            .collect();
        assert_eq!(listed, toml_errors(&head));
    }

    #[test]
    fn keys_defined_twice_are_not_looked_for_in_a_broken_text() {
        let text = "a = 1\na = 2\nb = [\n";
        assert!(
            toml::de::DeTable::parse_recoverable(text)
                .1
                .iter()
                .any(|e| e.message() == "duplicate key"),
            "toml finds the duplicate"
        );
        let (_, problems) = deserialize_all::<toml::Table>(&source(text));
        let (listed, omitted) = problems.into_parts();
        assert_eq!(omitted, 0);
        let shown: Vec<String> = listed.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown, ["t.toml:3:6: unclosed array, expected `]`"]);
        let listed: Vec<_> = listed
            .into_iter()
            .map(|p| (p.location.at, p.message))
            .collect();
        assert_eq!(listed, toml_errors(text));
    }

    #[test]
    fn the_first_are_chosen_by_place_whatever_the_order_they_come_in() {
        let mut first = FirstErrors::default();
        let at = |start: usize| {
            ParseError::new("x").with_unexpected(Span::new_unchecked(start, start + 1))
        };
        for start in (0..2 * MAX_PROBLEMS).rev() {
            first.report_error(at(start));
        }
        first.report_error(ParseError::new("nowhere"));
        assert_eq!(first.total, 2 * MAX_PROBLEMS + 1);
        let kept: Vec<Option<usize>> = first.kept.into_sorted_vec().iter().map(|r| r.at).collect();
        let want: Vec<Option<usize>> = std::iter::once(None)
            .chain((0..MAX_PROBLEMS - 1).map(Some))
            .collect();
        assert_eq!(kept, want);
    }
}
