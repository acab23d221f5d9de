//! Arbitrary bytes as what a client sends first on a connection: the fast
//! path's HTTP/1 request parser, then, for a request it answers itself, the
//! response decision and the response head it would write
//! (`server::fuzzing::Http1Harness`, which panics when an invariant breaks:
//! a complete head's prefixes are partial, no 500, Content-Length is the
//! body's, no body on a 304, every head we write parses).

#![no_main]

use std::sync::OnceLock;

use feedsmith::server::fuzzing::Http1Harness;
use libfuzzer_sys::fuzz_target;

static HARNESS: OnceLock<Http1Harness> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    HARNESS.get_or_init(Http1Harness::new).run(data);
});
