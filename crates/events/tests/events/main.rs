//! Integration tests of the event schemas: round trips, strict decoding, headers and the golden
//! wire fixtures in `proto/testdata/`.

mod decode_errors;
mod fixtures;
mod headers;
mod roundtrip;
mod samples;
