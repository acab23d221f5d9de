//! The XML writer both XML formats share: quick-xml's writer with two-space
//! indentation, attribute values escaped so parsers read them back exactly,
//! and CDATA for large HTML text.
//!
//! RSS text can be written the RSS Best Practices Profile's way: `&` and `<`
//! in plain text as the hexadecimal references `&#x26;` and `&#x3C;`. RSS never
//! said whether an element's text is plain or HTML, so readers guess; the
//! profile's spelling tells them (and the W3C validator, whose `CharacterData`
//! warning asks for it) that the text is plain. Atom says `type="text"` instead.

use std::borrow::Cow;
use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesCData, BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::EntryImage;

pub struct Xml {
    w: Writer<Vec<u8>>,
    /// Plain text's `&` and `<` as `&#x26;` and `&#x3C;` (RSS); else the
    /// usual `&amp;` and `&lt;`.
    hex_char_refs: bool,
}

/// Escapes element text the RSS profile's way: `&` and `<` as hexadecimal
/// character references, `>` as `&gt;` (so `]]>` never appears).
fn escape_text_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&#x26;"),
            '<' => out.push_str("&#x3C;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value so a parser reads back exactly this text:
/// besides `& < > "`, tab and newline become character references, which
/// attribute-value normalisation (XML 1.0 §3.3.3) would otherwise turn into
/// spaces.
fn escape_attribute(value: &str) -> Cow<'_, str> {
    let needs = value
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\t' | b'\n' | b'\r'));
    if !needs {
        return value.into();
    }
    let mut out = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out.into()
}

fn element<'a>(name: &'a str, attrs: &[(&str, &str)]) -> BytesStart<'a> {
    let mut el = BytesStart::new(name);
    for (key, value) in attrs {
        // The byte-pair form writes the value as given: already escaped above.
        el.push_attribute((key.as_bytes(), escape_attribute(value).as_bytes()));
    }
    el
}

impl Xml {
    pub fn with_capacity(bytes: usize) -> Self {
        Self::into_buffer(Vec::with_capacity(bytes))
    }

    /// A writer appending to `buf` (whatever it holds stays in front).
    fn into_buffer(buf: Vec<u8>) -> Self {
        Self {
            w: Writer::new_with_indent(buf, b' ', 2),
            hex_char_refs: false,
        }
    }

    /// Writes `&` and `<` in element text as `&#x26;` and `&#x3C;` (see the
    /// module docs); attribute values are unchanged.
    pub fn with_hex_char_refs(mut self) -> Self {
        self.hex_char_refs = true;
        self
    }

    /// A writer for a fragment that sits inside the elements `open`, one
    /// inside the next: its first tag is put on a new line and indented
    /// exactly as in a whole document written by one writer, after those
    /// parents' start tags or after any sibling. This is what lets a feed's
    /// items be written before its header (see `super::stream`) and still
    /// give the same bytes as writing it top to bottom.
    pub fn nested(bytes: usize, open: &[&str]) -> io::Result<Self> {
        Self::nested_in(Vec::with_capacity(bytes), open)
    }

    /// [`nested`](Self::nested), writing into `buf` (emptied first), so a
    /// caller that renders fragment after fragment reuses one buffer's
    /// memory instead of faulting in fresh pages for each.
    pub fn nested_in(buf: Vec<u8>, open: &[&str]) -> io::Result<Self> {
        let mut x = Self::into_buffer(buf);
        x.w.get_mut().clear();
        for name in open {
            x.start(name, &[])?;
        }
        // The indentation state stays: the depth, and that the next tag
        // starts a new line (as after any start tag, end tag or empty tag).
        x.w.get_mut().clear();
        Ok(x)
    }

    pub fn declaration(&mut self) -> io::Result<()> {
        self.w
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
    }

    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
        self.w.write_event(Event::Start(element(name, attrs)))
    }

    pub fn end(&mut self, name: &str) -> io::Result<()> {
        self.w.write_event(Event::End(BytesEnd::new(name)))
    }

    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
        self.w.write_event(Event::Empty(element(name, attrs)))
    }

    /// An element holding escaped text.
    pub fn text(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> io::Result<()> {
        self.start(name, attrs)?;
        // Most text has nothing to escape; a SIMD scan for `& < >` lets it be
        // written as it is instead of byte by byte through the escaper.
        // (Quotes need no escaping in element text.)
        if memchr::memchr3(b'&', b'<', b'>', text.as_bytes()).is_none() {
            self.w
                .write_event(Event::Text(BytesText::from_escaped(text)))?;
        } else if self.hex_char_refs {
            let escaped = escape_text_hex(text);
            self.w
                .write_event(Event::Text(BytesText::from_escaped(escaped.as_str())))?;
        } else {
            self.w.write_event(Event::Text(BytesText::new(text)))?;
        }
        self.end(name)
    }

    /// An element holding text as CDATA, split wherever the text contains `]]>`.
    pub fn cdata(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> io::Result<()> {
        self.start(name, attrs)?;
        for section in BytesCData::escaped(text) {
            self.w.write_event(Event::CData(section))?;
        }
        self.end(name)
    }

    /// The Media RSS element for an article's image, with the photographer's
    /// credit and the caption; RSS and Atom write it the same way.
    pub fn media_content(&mut self, image: &EntryImage<'_>) -> io::Result<()> {
        let size = image.length.map(|l| l.to_string());
        let mut attrs = vec![
            ("url", image.url),
            ("medium", "image"),
            ("type", image.mime_type),
        ];
        if let Some(size) = &size {
            attrs.push(("fileSize", size));
        }
        self.start("media:content", &attrs)?;
        if let Some(credit) = &image.credit {
            self.text(
                "media:credit",
                &[("role", "photographer"), ("scheme", "urn:ebu")],
                credit,
            )?;
        }
        if let Some(caption) = &image.caption {
            self.text("media:description", &[("type", "plain")], caption)?;
        }
        self.end("media:content")
    }

    pub fn finish(self) -> Vec<u8> {
        self.w.into_inner()
    }
}
