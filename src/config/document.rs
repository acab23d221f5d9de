//! Reading one TOML document into a raw config struct, collecting every problem.
//!
//! serde stops at the first error, but an admin fixing a config wants to see all
//! of them at once. The text is first scanned for syntax errors (`syntax`,
//! in memory that does not grow with their number); only a sound text is
//! parsed, once, into toml's spanned tree and
//! checked in two passes. First every entry is deserialized on its own (in a
//! document holding only it and the tables around it), which finds each bad
//! value and unknown key at the cost of that entry alone. Then the whole
//! document, with those entries taken out, is deserialized repeatedly: each
//! failure (a missing key, mostly) is recorded with its position, the offending
//! entry is taken out, and the rest is tried again. The raw structs keep
//! `deny_unknown_fields` and their typed fields, so serde stays the one place
//! that decides what is valid. This module knows nothing about which keys
//! exist; `config` does. Its work grows with the size of the text, not with
//! size × problems: positions come from a [`LineIndex`] built once per file.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::syntax;

/// A position in a config file, 1-based, columns counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    /// The line, counting from 1.
    pub line: usize,
    /// The column, counting from 1, in characters (not bytes).
    pub col: usize,
}

/// Bytes per checkpoint of [`LineIndex`]'s character count: a lookup counts at
/// most this many bytes, however long the line.
const CHAR_BLOCK: usize = 1024;

/// Turns byte offsets in one text into [`LineCol`]s. Built once per file, so
/// each of thousands of problems costs a binary search instead of a scan of
/// the text up to it (which made a large broken file take minutes).
#[derive(Debug, Clone, Default)]
pub struct LineIndex {
    /// The byte offset at which each line starts; the first is 0.
    line_starts: Vec<usize>,
    /// Characters (bytes that do not continue a UTF-8 sequence) before each
    /// multiple of [`CHAR_BLOCK`]; empty when the text is ASCII, where bytes
    /// and characters agree. Keeps columns cheap on one very long line too.
    chars_before_block: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        let line_starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1))
            .collect();
        let chars_before_block = if text.is_ascii() {
            Vec::new()
        } else {
            let mut before = 0;
            bytes
                .chunks(CHAR_BLOCK)
                .map(|block| {
                    let at = before;
                    before += chars_in(block);
                    at
                })
                .collect()
        };
        Self {
            line_starts,
            chars_before_block,
        }
    }

    /// The line and column of byte `offset` in `text`, the text this index was
    /// built from. An offset past the end means the end; one inside a
    /// character means that character.
    pub fn locate(&self, text: &str, offset: usize) -> LineCol {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        // The first entry is 0, so at least one line starts at or before `offset`.
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let col = self
            .chars_before(text, offset)
            .saturating_sub(self.chars_before(text, start))
            + 1;
        LineCol { line, col }
    }

    /// Characters in `text[..offset]`, `offset` on a character boundary.
    fn chars_before(&self, text: &str, offset: usize) -> usize {
        if self.chars_before_block.is_empty() {
            return offset;
        }
        let block = offset / CHAR_BLOCK;
        let base = self.chars_before_block.get(block).copied().unwrap_or(0);
        base + chars_in(&text.as_bytes()[block * CHAR_BLOCK..offset])
    }
}

/// Characters that start in `bytes`: every byte but UTF-8 continuation bytes.
fn chars_in(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A place in a config file: the file, and the position when it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as it was named when read.
    pub path: PathBuf,
    /// Where in the file; `None` when the problem is with the file as a whole.
    pub at: Option<LineCol>,
}

impl Location {
    /// The position in `source` where the byte range `span` starts; the whole file
    /// when there is no span.
    pub fn new(source: &Source, span: Option<Range<usize>>) -> Self {
        Self {
            path: source.path.clone(),
            at: span.map(|s| source.lines.locate(&source.text, s.start)),
        }
    }

    /// The whole of the file at `path`, with no position.
    pub fn file(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            at: None,
        }
    }

    /// A [`Problem`] at this location, saying `message`.
    pub fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            location: self.clone(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(LineCol { line, col }) => write!(f, "{}:{line}:{col}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// One problem in the configuration, printed as `PATH:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the problem is.
    pub location: Location,
    /// What is wrong, for a person: one line, no location prefix.
    pub message: String,
}

impl Problem {
    /// A problem at the start of the byte range `span` of `source` (the whole file
    /// when `None`).
    pub fn at(source: &Source, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Location::new(source, span).problem(message)
    }

    /// A problem with the file at `path` as a whole (unreadable, say).
    pub fn in_file(path: &Path, message: impl Into<String>) -> Self {
        Location::file(path).problem(message)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// The most problems a configuration error lists; the rest are counted. Nobody
/// reads past the first screenful, and a log line or `/healthz` body per
/// problem of a garbage file would be megabytes.
pub const MAX_PROBLEMS: usize = 100;

/// Problems in the order they are shown: the first [`MAX_PROBLEMS`], and a
/// count of the rest, which are never built (a 1 MiB file can hold 1.5
/// million syntax errors). Anything added after one was counted is counted
/// too, so the list is always the first of all that were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    listed: Vec<Problem>,
    omitted: usize,
}

impl Problems {
    /// Adds `problem` after the others: listed if fewer than [`MAX_PROBLEMS`] are,
    /// else only counted.
    pub fn push(&mut self, problem: Problem) {
        self.push_with(|| problem);
    }

    /// Adds the problem `make` builds, building it only if it is listed.
    pub fn push_with(&mut self, make: impl FnOnce() -> Problem) {
        if self.omitted == 0 && self.listed.len() < MAX_PROBLEMS {
            self.listed.push(make());
        } else {
            self.omitted += 1;
        }
    }

    /// `listed`, the first problems found, and a count of `more` found after
    /// them.
    pub fn first(listed: impl IntoIterator<Item = Problem>, more: usize) -> Self {
        let mut problems: Problems = listed.into_iter().collect();
        problems.omitted += more;
        problems
    }

    /// Adds `other`'s problems after these.
    pub fn append(&mut self, other: Problems) {
        for problem in other.listed {
            self.push(problem);
        }
        self.omitted += other.omitted;
    }

    /// Whether no problem was added (listed or counted).
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty() && self.omitted == 0
    }

    /// The problems listed, and how many more there were.
    pub fn into_parts(self) -> (Vec<Problem>, usize) {
        (self.listed, self.omitted)
    }
}

impl FromIterator<Problem> for Problems {
    fn from_iter<I: IntoIterator<Item = Problem>>(iter: I) -> Self {
        let mut problems = Problems::default();
        for problem in iter {
            problems.push(problem);
        }
        problems
    }
}

/// The text of one config file and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file's path, as given (relative paths stay relative).
    pub path: PathBuf,
    /// The file's whole text.
    pub text: String,
    lines: LineIndex,
}

impl Source {
    /// Wraps `text` read from `path`, indexing its lines once for [`Location::new`].
    pub fn new(path: PathBuf, text: String) -> Self {
        let lines = LineIndex::new(&text);
        Self { path, text, lines }
    }
}

/// The deepest `key = value` entry whose key or value contains `span`, as the
/// list of keys leading to it. A `[table]`'s own span need not cover its
/// entries, so tables are always searched.
fn entry_containing(table: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<String>> {
    let contains = |outer: Range<usize>| outer.start <= span.start && span.end <= outer.end;
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if contains(key.span()) {
            return Some(vec![name]);
        }
        if let DeValue::Table(inner) = value.get_ref()
            && let Some(rest) = entry_containing(inner, span)
        {
            let mut path = vec![name];
            path.extend(rest);
            return Some(path);
        }
        if contains(value.span()) {
            return Some(vec![name]);
        }
    }
    None
}

/// The deepest table entry (`[server]`, or an inline table) whose key or value
/// contains `span`.
fn table_containing(table: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<String>> {
    let contains = |outer: Range<usize>| outer.start <= span.start && span.end <= outer.end;
    for (key, value) in table.iter() {
        if let DeValue::Table(inner) = value.get_ref() {
            let name = key.get_ref().to_string();
            if let Some(rest) = table_containing(inner, span) {
                let mut path = vec![name];
                path.extend(rest);
                return Some(path);
            }
            if contains(key.span()) || contains(value.span()) {
                return Some(vec![name]);
            }
        }
    }
    None
}

fn remove_entry(table: &mut DeTable<'_>, path: &[String]) -> bool {
    match path {
        [] => false,
        [last] => table.remove(last.as_str()).is_some(),
        [first, rest @ ..] => match table.get_mut(first.as_str()).map(|v| v.get_mut()) {
            Some(DeValue::Table(inner)) => remove_entry(inner, rest),
            _ => false,
        },
    }
}

/// The first pass: each entry deserialized alone. Retrying the whole document
/// once per problem cost size × problems (seconds for a file of unknown keys);
/// this costs the size once. It relies on serde's derived structs judging each
/// field by itself, and takes only errors that belong to the entry probed (or
/// an unknown key on the way to it): a "missing" key is expected in a probe,
/// and anything else is left to the whole-document pass.
struct Screen<'a, 'i> {
    source: &'a Source,
    tree_span: Range<usize>,
    /// The tables around the entry probed: key and the table's span.
    around: Vec<(&'a Spanned<DeString<'i>>, Range<usize>)>,
    /// The keys leading to the entry probed, itself included.
    names: Vec<String>,
    /// Entries found wrong, in the order found, with their problem.
    found: Vec<(Vec<String>, Problem)>,
}

impl<'a, 'i> Screen<'a, 'i> {
    fn walk<T: DeserializeOwned>(&mut self, table: &'a DeTable<'i>) {
        for (key, value) in table.iter() {
            self.names.push(key.get_ref().to_string());
            // A table already reported (an unknown one) hides what is in it.
            let reported = self
                .found
                .last()
                .is_some_and(|(bad, _)| self.names.starts_with(bad));
            if !reported {
                match value.get_ref() {
                    DeValue::Table(inner) if !inner.is_empty() => {
                        self.around.push((key, value.span()));
                        self.walk::<T>(inner);
                        self.around.pop();
                    }
                    _ => self.probe::<T>(key, value),
                }
            }
            self.names.pop();
        }
    }

    fn probe<T: DeserializeOwned>(
        &mut self,
        key: &Spanned<DeString<'i>>,
        value: &Spanned<DeValue<'i>>,
    ) {
        let mut probe = DeTable::new();
        probe.insert(key.clone(), value.clone());
        for (key, span) in self.around.iter().rev() {
            let mut outer = DeTable::new();
            outer.insert(
                (*key).clone(),
                Spanned::new(span.clone(), DeValue::Table(probe)),
            );
            probe = outer;
        }
        let de = toml::Deserializer::from(Spanned::new(self.tree_span.clone(), probe.clone()));
        let Err(err) = T::deserialize(de) else {
            return;
        };
        let message = err.message();
        if missing_field(message).is_some() {
            return;
        }
        let Some(path) = err.span().and_then(|s| entry_containing(&probe, &s)) else {
            return;
        };
        if path.len() != self.names.len() && !message.starts_with("unknown field") {
            return;
        }
        let problem = Problem::at(self.source, err.span(), entry_message(&path, message));
        self.found.push((path, problem));
    }
}

/// `path.to.key: message`, in the words an admin editing TOML uses.
fn entry_message(path: &[String], message: &str) -> String {
    format!(
        "{}: {}",
        path.join("."),
        message.replacen("unknown field", "unknown key", 1)
    )
}

/// Bounds the whole-document pass. After the first pass it meets only missing
/// keys (one per table) and the rare error no entry shows alone.
const MAX_ATTEMPTS: usize = 256;

/// Deserializes `source` into `T`, returning the value (when the parts that are
/// left still make a whole `T`) and every problem found on the way, in file
/// order.
pub fn deserialize_all<T: DeserializeOwned>(source: &Source) -> (Option<T>, Problems) {
    // After a syntax error the tree is a guess: duplicate keys or wrong types
    // found in it would only add noise. And toml's own parse keeps every error
    // it finds, 331 MB for a 1 MiB garbage file (figures in `syntax`).
    let syntax = syntax::syntax_errors(source);
    if !syntax.is_empty() {
        return (None, syntax);
    }
    let (tree, errors) = DeTable::parse_recoverable(&source.text);
    if !errors.is_empty() {
        // Keys or tables defined twice: what is left of toml's errors once
        // the text is sound. Only the problems listed are built.
        let mut problems = Problems::default();
        for e in &errors {
            problems.push_with(|| Problem::at(source, e.span(), e.message().to_owned()));
        }
        return (None, problems);
    }
    let tree_span = tree.span();
    let mut tree: DeTable<'_> = tree.into_inner();
    let mut screen = Screen {
        source,
        tree_span: tree_span.clone(),
        around: Vec::new(),
        names: Vec::new(),
        found: Vec::new(),
    };
    screen.walk::<T>(&tree);
    let found = screen.found;
    let mut problems = Vec::with_capacity(found.len());
    // Paths of entries taken out after being reported.
    let mut removed: Vec<Vec<String>> = Vec::with_capacity(found.len());
    for (path, problem) in found {
        remove_entry(&mut tree, &path);
        removed.push(path);
        problems.push(problem);
    }
    for _ in 0..MAX_ATTEMPTS {
        let de = toml::Deserializer::from(Spanned::new(tree_span.clone(), tree.clone()));
        match T::deserialize(de) {
            Ok(value) => return (Some(value), sorted(problems)),
            Err(err) => {
                let message = err.message().to_owned();
                if let Some(field) = missing_field(&message) {
                    // The table that lacks the key. The root's errors carry the
                    // document's span, which a `[table]` header at the very
                    // start would also contain.
                    let table = match err.span() {
                        Some(s) if s != tree_span => {
                            table_containing(&tree, &s).unwrap_or_default()
                        }
                        _ => Vec::new(),
                    };
                    let mut key = table.clone();
                    key.push(field.to_owned());
                    if !removed.contains(&key) {
                        // Really missing: report it.
                        let message = format!("missing required key `{field}`");
                        problems.push(Problem::at(source, err.span(), message));
                    }
                    // Either way the table cannot be read without the key: set
                    // it aside and look on in the rest; at the root there is no
                    // rest.
                    if table.is_empty() || !remove_entry(&mut tree, &table) {
                        return (None, sorted(problems));
                    }
                    removed.push(table);
                    continue;
                }
                let path = err.span().and_then(|s| entry_containing(&tree, &s));
                let message = match &path {
                    Some(path) => entry_message(path, &message),
                    None => message,
                };
                problems.push(Problem::at(source, err.span(), message));
                match path {
                    Some(path) if remove_entry(&mut tree, &path) => removed.push(path),
                    _ => return (None, sorted(problems)),
                }
            }
        }
    }
    (None, sorted(problems))
}

/// Problems in file order, which is how an admin works through them.
fn sorted(mut problems: Vec<Problem>) -> Problems {
    problems.sort_by_key(|p| p.location.at);
    problems.into_iter().collect()
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        count: Option<u32>,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        flag: bool,
        level: Option<u8>,
    }

    fn run(text: &str) -> (Option<Outer>, Vec<String>) {
        let source = Source::new(PathBuf::from("t.toml"), text.to_owned());
        let (v, p) = deserialize_all::<Outer>(&source);
        let (listed, omitted) = p.into_parts();
        assert_eq!(omitted, 0, "the tests stay under the limit");
        (v, listed.iter().map(|p| p.to_string()).collect())
    }

    /// The position of byte `offset` found the slow, obvious way.
    fn scanned(text: &str, offset: usize) -> LineCol {
        let before = &text[..floor_char_boundary(text, offset.min(text.len()))];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        LineCol {
            line: before.matches('\n').count() + 1,
            col: before[line_start..].chars().count() + 1,
        }
    }

    fn locate(text: &str, offset: usize) -> LineCol {
        LineIndex::new(text).locate(text, offset)
    }

    #[test]
    fn line_col_counts_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(locate(text, 0), LineCol { line: 1, col: 1 });
        let second_equals = text.rfind('=').expect("literal has '='");
        assert_eq!(locate(text, second_equals), LineCol { line: 2, col: 4 });
        // Past the end is the end; inside `é` is `é`.
        assert_eq!(locate(text, 999), LineCol { line: 3, col: 1 });
        let e_acute = text.find('é').expect("literal has 'é'");
        assert_eq!(locate(text, e_acute + 1), LineCol { line: 2, col: 2 });
    }

    #[test]
    fn line_index_agrees_with_a_scan_at_every_offset() {
        // Multi-byte characters on both sides of a checkpoint, a line longer
        // than one, CRLF, an empty line and no final newline.
        let long: String = "aé€😀".repeat(CHAR_BLOCK / 3);
        let text = format!("x = 1\r\n\n{long}\ny = \"{long}\"\nz");
        let index = LineIndex::new(&text);
        for offset in 0..=text.len() + 1 {
            assert_eq!(
                index.locate(&text, offset),
                scanned(&text, offset),
                "offset {offset}"
            );
        }
        let ascii = "k = 1\n".repeat(CHAR_BLOCK);
        let index = LineIndex::new(&ascii);
        for offset in (0..=ascii.len()).step_by(7) {
            assert_eq!(index.locate(&ascii, offset), scanned(&ascii, offset));
        }
    }

    #[test]
    fn valid_document_has_no_problems() {
        let (v, p) = run("name = \"x\"\n[inner]\nflag = true\n");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(v.map(|v| v.name), Some("x".to_owned()));
    }

    #[test]
    fn every_problem_is_reported_with_its_position() {
        let (_, p) = run(
            "name = \"x\"\ncount = \"many\"\ncolour = 3\n[inner]\nflag = 1\nlevel = 300\nextra = true\n",
        );
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(
            p[0].starts_with("t.toml:2:9: count: invalid type"),
            "{}",
            p[0]
        );
        assert!(
            p[1].starts_with("t.toml:3:1: colour: unknown key `colour`"),
            "{}",
            p[1]
        );
        assert!(
            p[2].starts_with("t.toml:5:8: inner.flag: invalid type"),
            "{}",
            p[2]
        );
        assert!(p[3].starts_with("t.toml:6:9: inner.level:"), "{}", p[3]);
        assert!(
            p[4].starts_with("t.toml:7:1: inner.extra: unknown key `extra`"),
            "{}",
            p[4]
        );
    }

    #[test]
    fn missing_required_field_is_reported_once() {
        let (v, p) = run("count = 3\n");
        assert!(v.is_none());
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0], "t.toml:1:1: missing required key `name`");
    }

    #[test]
    fn removing_a_bad_required_field_does_not_add_a_missing_field_problem() {
        let (_, p) = run("name = 5\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("t.toml:1:8: name: invalid type"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn a_missing_root_key_is_reported_once_when_a_table_comes_first() {
        // The root's span is where the first `[table]` header starts too.
        let (v, p) = run("[inner]\nflag = true\n");
        assert!(v.is_none());
        assert_eq!(p, vec!["t.toml:1:1: missing required key `name`"]);
    }

    #[test]
    fn every_problem_is_found_however_many_there_are() {
        // More than the whole-document pass may try: each is found alone.
        let mut text = String::from("name = \"x\"\n[inner]\nflag = true\n");
        for i in 0..MAX_ATTEMPTS + 50 {
            text.push_str(&format!("extra{i} = {i}\n"));
        }
        text.push_str("level = \"high\"\n");
        let source = Source::new(PathBuf::from("t.toml"), text);
        let (v, p) = deserialize_all::<Outer>(&source);
        assert!(v.is_some(), "the rest still makes a whole value");
        let (listed, omitted) = p.into_parts();
        assert_eq!(listed.len() + omitted, MAX_ATTEMPTS + 51);
        assert_eq!(listed.len(), MAX_PROBLEMS);
        // The first hundred in file order: extra0 on line 4, and on.
        for (i, p) in listed.iter().enumerate() {
            let want = format!("t.toml:{}:1: inner.extra{i}: unknown key `extra{i}`", i + 4);
            assert!(p.to_string().starts_with(&want), "{p}");
        }
    }

    #[test]
    fn syntax_errors_are_all_reported() {
        let (v, p) = run("name = \"x\"\nvalue = = 3\nother = [1,\n");
        assert!(v.is_none());
        assert!(p.len() >= 2, "{p:?}");
        assert!(p.iter().any(|p| p.starts_with("t.toml:2:")), "{p:?}");
        assert!(
            p.iter()
                .any(|p| p.starts_with("t.toml:3:") || p.starts_with("t.toml:4:")),
            "{p:?}"
        );
    }

    #[test]
    fn missing_key_in_a_table_does_not_hide_problems_after_it() {
        let (_, p) = run("name = \"x\"\ncolour = 1\n[inner]\nlevel = 3\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("t.toml:2:1: colour: unknown key"),
            "{}",
            p[0]
        );
        assert!(p[1].contains("missing required key `flag`"), "{}", p[1]);
        assert!(
            p[1].starts_with("t.toml:3:") || p[1].starts_with("t.toml:4:"),
            "{}",
            p[1]
        );
    }
}
