//! Helpers shared by the unit tests: paths to the shared test media and the
//! ISCC conformance vectors.

use std::path::PathBuf;

use serde_json::Value;

/// `rel` inside the `shared/` folder that sits beside the workspace root.
pub(crate) fn shared_path(rel: &str) -> PathBuf {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared")).join(rel);
    assert!(path.exists(), "test data missing: {}", path.display());
    path
}

/// The conformance vectors of one ISCC function as `(name, inputs, outputs)`.
pub(crate) fn conformance_cases(function: &str) -> Vec<(String, Vec<Value>, Value)> {
    let text = std::fs::read_to_string(shared_path("conformance/iscc/data.json"))
        .expect("read conformance vectors");
    let data: Value = serde_json::from_str(&text).expect("parse conformance vectors");
    let cases = data[function]
        .as_object()
        .unwrap_or_else(|| panic!("no conformance section {function}"));
    cases
        .iter()
        .map(|(name, case)| {
            let inputs = case["inputs"].as_array().expect("inputs").clone();
            (name.clone(), inputs, case["outputs"].clone())
        })
        .collect()
}

/// The bytes of a conformance input written `"stream:<hex>"`.
pub(crate) fn decode_stream_input(input: &Value) -> Vec<u8> {
    let text = input.as_str().expect("stream input is a string");
    let hex_digits = text.strip_prefix("stream:").expect("stream: prefix");
    hex::decode(hex_digits).expect("valid hex")
}
