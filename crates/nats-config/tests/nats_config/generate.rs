//! The generated files: accepted by `nats-server -t`, regenerated without invalidating anyone.

use std::process::Command;

use wasl_nats_config::{NatsConfigOptions, PartnerOrg, TlsOptions, generate};
use wasl_testkit::find_nats_server;

use crate::support::*;

fn options(dir: &std::path::Path, orgs: Vec<PartnerOrg>) -> NatsConfigOptions {
    NatsConfigOptions {
        orgs,
        out_dir: dir.to_owned(),
        tls: None,
        server_url: Some("tls://nats.wasl.example:4222".into()),
    }
}

fn org(name: &str) -> PartnerOrg {
    PartnerOrg {
        id: fresh(),
        name: name.into(),
    }
}

#[test]
fn the_generated_config_passes_the_server_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(dir.path(), vec![org("A \"quoted\" name"), org("B")]);
    // Any readable PEM-looking files: `-t` parses the config, it does not load TLS material
    // when the files exist (a real handshake is not part of this test).
    let cert = dir.path().join("server.pem");
    std::fs::write(&cert, "").unwrap();
    options.tls = Some(TlsOptions {
        cert_file: cert.clone(),
        key_file: cert.clone(),
        ca_file: Some(cert),
        verify_clients: true,
    });
    let generated = generate(&options).unwrap();
    assert!(
        std::fs::read_to_string(&generated.auth_conf)
            .unwrap()
            .contains("verify: true")
    );
    // Without TLS, so that `-t` does not need real certificates.
    options.tls = None;
    generate(&options).unwrap();
    let main = dir.path().join("nats-server.conf");
    let store = dir.path().join("store");
    std::fs::write(
        &main,
        format!(
            "listen: \"127.0.0.1:-1\"\njetstream {{ store_dir: {:?} }}\ninclude ./auth.conf\n",
            store
        ),
    )
    .unwrap();
    let binary = find_nats_server().expect("nats-server");
    let output = Command::new(&binary.path)
        .arg("-t")
        .arg("-c")
        .arg(&main)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "nats-server -t refused the config:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn regenerating_reuses_every_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (org("A"), org("B"));
    let first = generate(&options(dir.path(), vec![a.clone()])).unwrap();
    assert!(first.hub.created && first.partners[0].credential.created);
    let again = generate(&options(dir.path(), vec![a.clone()])).unwrap();
    assert!(again.changed.is_empty(), "changed: {:?}", again.changed);
    let second = generate(&options(dir.path(), vec![a.clone(), b.clone()])).unwrap();
    assert_eq!(second.hub.public_key, first.hub.public_key);
    assert!(!second.hub.created);
    assert_eq!(
        second.partners[0].credential.public_key,
        first.partners[0].credential.public_key
    );
    assert!(!second.partners[0].credential.created);
    assert!(second.partners[1].credential.created);
    let auth = std::fs::read_to_string(&second.auth_conf).unwrap();
    for p in &second.partners {
        assert!(auth.contains(&p.credential.public_key));
        let readme = std::fs::read_to_string(&p.readme).unwrap();
        assert!(readme.contains(&p.credential.public_key));
        assert!(readme.contains(&format!("WASL_OUT_{}", p.org.id)));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in &second.partners {
            let mode = std::fs::metadata(&p.credential.seed_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

#[test]
fn an_organisation_listed_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = org("A");
    let result = generate(&options(dir.path(), vec![a.clone(), a]));
    assert!(matches!(result, Err(wasl_nats_config::Error::DuplicateOrg(_))));
}
