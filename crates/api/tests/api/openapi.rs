//! The OpenAPI document is whole: 3.1, every operation named and secured or public on purpose,
//! and every reference resolves (a dangling one hides error bodies from the fuzzer).

use serde_json::Value;

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let doc = serde_json::to_value(wasl_api::openapi()).expect("the document");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("an unexpected reference {target}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{target} does not resolve"
        );
    }
}

#[test]
fn every_operation_has_an_id_and_only_health_and_login_are_open() {
    let doc = serde_json::to_value(wasl_api::openapi()).expect("the document");
    let open = ["healthz", "readyz", "login"];
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no id"));
            assert!(ids.insert(id.to_owned()), "{id} is used twice");
            let secured = operation
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            assert_eq!(secured, !open.contains(&id), "{method} {path} ({id})");
            if path.starts_with("/v1/") {
                let problem = &operation["responses"]["404"]["content"]["application/problem+json"];
                assert!(problem.is_object(), "{id} documents its problems");
            }
        }
    }
}
