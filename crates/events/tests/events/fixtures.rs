//! Golden wire fixtures: `proto/testdata/<event type>.binpb` holds the bytes of the sample of
//! every event type as once written. They must keep decoding to exactly the sample, whatever the
//! schema and the code become; that is how a change that breaks reading the existing log is
//! caught before it ships.
//!
//! `WASL_BLESS_FIXTURES=1 cargo test -p wasl-events --test events fixtures` (re)writes them from
//! the samples. Bless only for a new event type; a changed fixture in a diff means old events
//! would no longer read the same, which needs an upcaster, not a new fixture.

use crate::samples::sample;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Once;
use wasl_events::{EventType, decode, encode};

const SUFFIX: &str = ".binpb";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/testdata")
}

fn path(t: EventType) -> PathBuf {
    dir().join(format!("{}{SUFFIX}", t.as_str()))
}

/// Writes the fixtures once per test run when `WASL_BLESS_FIXTURES=1`, before any test reads them.
fn bless_if_asked() {
    static BLESS: Once = Once::new();
    BLESS.call_once(|| {
        if std::env::var("WASL_BLESS_FIXTURES").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(dir()).unwrap();
            for t in EventType::ALL {
                std::fs::write(path(*t), encode(&sample(*t))).unwrap();
            }
        }
    });
}

#[test]
fn every_fixture_decodes_to_exactly_its_sample() {
    bless_if_asked();
    for t in EventType::ALL {
        let path = path(*t);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "no fixture for {t} at {} ({e}); write it with WASL_BLESS_FIXTURES=1",
                path.display()
            )
        });
        let expected = sample(*t);
        match decode(&bytes) {
            Ok(decoded) => assert_eq!(
                decoded,
                expected,
                "{t}: the fixture decodes to another value\n fixture: {}\n sample:  {}",
                hex::encode(&bytes),
                hex::encode(encode(&expected))
            ),
            Err(e) => panic!(
                "{t}: the fixture no longer decodes: {e}\n fixture: {}",
                hex::encode(&bytes)
            ),
        }
    }
}

#[test]
fn every_fixture_file_is_of_a_known_event_type() {
    bless_if_asked();
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == "README.md" {
            continue;
        }
        let t = name
            .strip_suffix(SUFFIX)
            .and_then(EventType::parse)
            .unwrap_or_else(|| panic!("{name} in proto/testdata is not <known event type>{SUFFIX}"));
        found.insert(t);
    }
    let all: BTreeSet<_> = EventType::ALL.iter().copied().collect();
    assert_eq!(found, all, "every event type has exactly one fixture");
}

#[test]
fn fixtures_stay_small() {
    bless_if_asked();
    for t in EventType::ALL {
        let len = std::fs::metadata(path(*t)).map(|m| m.len()).unwrap_or(0);
        assert!(len <= 1024, "{t}: {len} bytes");
    }
}
