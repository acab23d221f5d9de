//! Arbitrary bytes as a `.xml` and as an extension-less feed file, through the
//! import's real feed sniffing, parsing, mapping and validation
//! (`import::parse_file_bytes` into `import::feed`).
//!
//! Beyond "no panic" it checks what the import promises: rejections name
//! their file and say something, no id is accepted twice from one file, and
//! every accepted id is one the contract allows.

#![no_main]

use std::collections::HashSet;
use std::path::Path;

use chrono_tz::Europe::Dublin;
use feedsmith::article::ArticleId;
use feedsmith::import::parse_file_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["fuzz.xml", "fuzz"] {
        let path = Path::new(name);
        let items = parse_file_bytes(path, data, Dublin);
        let mut ids = HashSet::new();
        for item in &items {
            match item {
                Ok(checked) => {
                    let id = checked.article.id.as_str();
                    assert!(id.parse::<ArticleId>().is_ok(), "{id:?} accepted");
                    assert!(ids.insert(id.to_owned()), "{id} accepted twice");
                    assert!(checked.article.updated_at >= checked.article.published_at);
                }
                Err(r) => {
                    assert_eq!(r.file, path);
                    assert!(!r.reason.trim().is_empty(), "rejection without a reason");
                }
            }
        }
    }
});
