//! `openapi/openapi.json` against the running server: the document is
//! well-formed, every operation it describes is served, and the bodies the
//! server sends carry what the document promises.
//!
//! The document is hand-written, so these tests are what keeps it honest: a
//! handler that gains a status, a media type or a response member fails here
//! until the document says so too.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::support::{TestApp, media};

/// The operations the API has, each named after its handler.
const OPERATION_IDS: [&str; 31] = [
    "post_content",
    "post_content_batch",
    "post_learner",
    "post_membership",
    "delete_node",
    "get_cluster_status",
    "match_content",
    "get_content",
    "find_content",
    "get_checkpoint",
    "get_key",
    "get_entry",
    "get_inclusion_proof",
    "get_consistency_proof",
    "get_health",
    "post_party",
    "get_party",
    "post_party_key",
    "post_content_transfer",
    "get_content_holders",
    "post_content_licence",
    "get_content_licences",
    "get_licence",
    "post_sublicence",
    "post_licence_transfer",
    "post_licence_revocation",
    "get_content_history",
    "get_content_derivations",
    "get_party_holdings",
    "get_party_licences",
    "get_content_provenance",
];

/// Operations whose success needs a second node (a node to add or to
/// remove); on the single node here they must still answer as documented.
/// `cluster.rs` exercises them against several nodes.
const NEED_PEERS: [&str; 2] = ["post_learner", "delete_node"];

/// Operations whose success needs an intent signed for this server's log
/// and its parties, which a document's static example cannot be, or a
/// licence that only such an intent grants; they must still answer as
/// documented. `parties.rs`, `rights.rs` and `scenario.rs` sign real ones.
const NEED_SIGNED_INTENT: [&str; 7] = [
    "post_party_key",
    "post_content_transfer",
    "post_content_licence",
    "post_sublicence",
    "post_licence_transfer",
    "post_licence_revocation",
    "get_licence",
];

/// The HTTP methods a path item can hold (OpenAPI 3.1 §4.8.9).
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Files registered by requests built from the document, one per request
/// body media type; each differs from `rocket.jpg` and from the others, so
/// every registration is new.
const FRESH_FILES: [(&str, &str); 5] = [
    ("images/coffee.png", "image/png"),
    ("images/camera.png", "image/png"),
    ("images/flower.jpg", "image/jpeg"),
    ("images/chelsea.png", "image/png"),
    ("images/astronaut.png", "image/png"),
];

/// The parsed document.
fn document() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// One documented operation.
struct Operation<'a> {
    /// Path template, e.g. `/v1/content/{content_id}`.
    path: &'a str,
    /// Lowercase method, as the document spells it.
    method: &'a str,
    /// The Operation Object.
    op: &'a Value,
    /// Parameters declared on the Path Item, shared by its operations.
    shared_parameters: &'a [Value],
}

impl Operation<'_> {
    fn id(&self) -> &str {
        self.op["operationId"]
            .as_str()
            .unwrap_or("<no operationId>")
    }
}

/// Every operation in `doc`, in document order.
fn operations(doc: &Value) -> Vec<Operation<'_>> {
    let paths = doc["paths"].as_object().expect("the document has `paths`");
    let mut found = Vec::new();
    for (path, item) in paths {
        let shared_parameters = item["parameters"].as_array().map_or(&[][..], Vec::as_slice);
        for method in METHODS {
            if let Some(op) = item.get(method) {
                found.push(Operation {
                    path,
                    method,
                    op,
                    shared_parameters,
                });
            }
        }
    }
    found
}

/// The operation named `id`.
fn operation<'a>(doc: &'a Value, id: &str) -> Operation<'a> {
    operations(doc)
        .into_iter()
        .find(|o| o.id() == id)
        .unwrap_or_else(|| panic!("the document has no operation {id}"))
}

/// Follows `$ref`s (local JSON pointers) until a value without one.
fn deref<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..32 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return value;
        };
        value = resolve(doc, reference).unwrap_or_else(|| panic!("unresolved $ref {reference}"));
    }
    panic!("$ref chain longer than 32 links");
}

/// The value a local `$ref` names, if any.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` string anywhere in `value`.
fn collect_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The documented responses of `op`, by status code.
fn responses<'a>(doc: &'a Value, op: &'a Value) -> Vec<(&'a str, &'a Value)> {
    op["responses"]
        .as_object()
        .expect("an operation has `responses`")
        .iter()
        .map(|(status, response)| (status.as_str(), deref(doc, response)))
        .collect()
}

/// The schema documented for `status` and `media_type` of `op`.
fn response_schema<'a>(doc: &'a Value, op: &'a Value, status: &str, media_type: &str) -> &'a Value {
    let response = deref(doc, &op["responses"][status]);
    let schema = &response["content"][media_type]["schema"];
    assert!(
        !schema.is_null(),
        "no {media_type} schema documented for {status}"
    );
    schema
}

/// Whether a `Content-Type` value matches a documented media type key,
/// which may be a `type/*` or `*/*` range.
fn media_type_matches(documented: &str, content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let documented = documented.to_ascii_lowercase();
    match documented.split_once('/') {
        Some(("*", "*")) => true,
        Some((kind, "*")) => essence.split_once('/').is_some_and(|(k, _)| k == kind),
        _ => essence == documented,
    }
}

/// Checks `value` against the JSON Schema keywords the document uses for
/// response bodies (`$ref`, `allOf`, `type`, `enum`, `const`, `required`,
/// `properties`, `additionalProperties`, `items`, `minimum`) and records one
/// line per mismatch, naming where it is. Formats and patterns are not checked.
fn mismatches(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target =
            resolve(doc, reference).unwrap_or_else(|| panic!("unresolved $ref {reference}"));
        mismatches(doc, target, value, at, out);
    }
    for sub in schema["allOf"].as_array().into_iter().flatten() {
        mismatches(doc, sub, value, at, out);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| has_type(value, t)) {
        out.push(format!("{at}: {value} is not of type {types:?}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        out.push(format!("{at}: {value} is not {constant}"));
    }
    if let (Some(minimum), Some(n)) = (schema["minimum"].as_f64(), value.as_f64())
        && n < minimum
    {
        out.push(format!("{at}: {n} is below the minimum {minimum}"));
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                out.push(format!("{at}: required member `{name}` is missing"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, member) in object {
            let member_at = format!("{at}/{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(sub) => mismatches(doc, sub, member, &member_at, out),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        out.push(format!("{member_at}: member is not documented"))
                    }
                    Some(sub @ Value::Object(_)) => mismatches(doc, sub, member, &member_at, out),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            mismatches(doc, items, item, &format!("{at}/{i}"), out);
        }
    }
}

/// Whether `value` is of JSON Schema type `name`.
fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => panic!("unknown JSON Schema type {name:?}"),
    }
}

/// JSON pointers of every member `schema` requires, walking into required
/// members that are objects themselves (through `$ref` and `allOf`).
fn required_members(doc: &Value, schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target =
            resolve(doc, reference).unwrap_or_else(|| panic!("unresolved $ref {reference}"));
        required_members(doc, target, prefix, out);
    }
    for sub in schema["allOf"].as_array().into_iter().flatten() {
        required_members(doc, sub, prefix, out);
    }
    for name in schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let pointer = format!("{prefix}/{name}");
        out.insert(pointer.clone());
        if let Some(member) = schema["properties"].get(name) {
            required_members(doc, member, &pointer, out);
        }
    }
}

/// Asserts that `body` has every member `schema` requires and nothing that
/// contradicts it; `what` names the body in failures.
fn assert_conforms(doc: &Value, schema: &Value, body: &Value, what: &str) {
    let mut out = Vec::new();
    mismatches(doc, schema, body, "", &mut out);
    assert!(
        out.is_empty(),
        "{what} does not match the document:\n{}\n{body:#}",
        out.join("\n")
    );
}

/// What one call returned.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

/// Sends `request` and reads the whole answer.
async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("Content-Type is ASCII").to_owned())
        .unwrap_or_default();
    let body = response.bytes().await.expect("the body arrives").to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

/// Asserts that `answer` has a status `op` documents, a Content-Type
/// documented for that status, and, for JSON, a body matching the schema.
fn assert_documented(doc: &Value, operation: &Operation<'_>, answer: &Answer) {
    let what = format!(
        "{} {} ({})",
        operation.method.to_uppercase(),
        operation.path,
        operation.id()
    );
    let status = answer.status.to_string();
    let documented = responses(doc, operation.op);
    let Some((_, response)) = documented.iter().find(|(s, _)| *s == status) else {
        panic!(
            "{what} answered {status}, which is not documented: {}",
            String::from_utf8_lossy(&answer.body)
        );
    };
    let content = response["content"].as_object();
    let Some((media_type, media)) = content
        .into_iter()
        .flatten()
        .find(|(key, _)| media_type_matches(key, &answer.content_type))
    else {
        panic!(
            "{what} answered {status} with Content-Type {:?}, documented: {:?}",
            answer.content_type,
            content.map(|c| c.keys().collect::<Vec<_>>())
        );
    };
    if media_type.ends_with("json") {
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|e| {
            panic!("{what} answered {status} with a body that is not JSON: {e}")
        });
        assert_conforms(
            doc,
            &media["schema"],
            &body,
            &format!("the {status} body of {what}"),
        );
    } else {
        assert!(
            !answer.body.is_empty(),
            "{what} answered {status} with an empty body"
        );
    }
}

/// The URL of `operation` with its parameters filled from `values`
/// (`(name, value)` pairs); panics on a required parameter without a value.
fn url_for(
    doc: &Value,
    app: &TestApp,
    operation: &Operation<'_>,
    values: &[(&str, String)],
) -> String {
    let mut path = operation.path.to_owned();
    let mut query = Vec::new();
    let own = operation.op["parameters"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    for parameter in operation.shared_parameters.iter().chain(own) {
        let parameter = deref(doc, parameter);
        let name = parameter["name"].as_str().expect("a parameter has a name");
        let value = values.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
        let Some(value) = value else {
            assert!(
                parameter["required"] != json!(true),
                "{} has required parameter {name}, which this test has no value for",
                operation.id()
            );
            continue;
        };
        match parameter["in"].as_str() {
            Some("path") => path = path.replace(&format!("{{{name}}}"), value),
            Some("query") => query.push(format!("{name}={value}")),
            other => panic!(
                "{}: parameter {name} in {other:?} is not supported here",
                operation.id()
            ),
        }
    }
    assert!(
        !path.contains('{'),
        "{}: unfilled path parameter in {path}",
        operation.id()
    );
    if query.is_empty() {
        app.url(&path)
    } else {
        app.url(&format!("{path}?{}", query.join("&")))
    }
}

/// Whether `op` requires the operator token.
fn needs_token(doc: &Value, op: &Value) -> bool {
    let requirements = op.get("security").or_else(|| doc.get("security"));
    requirements
        .and_then(Value::as_array)
        .is_some_and(|reqs| reqs.iter().any(|r| r.get("operatorToken").is_some()))
}

/// A request body of `media_type` (a key of the operation's requestBody
/// content) carrying `file`, plus metadata where the document has a part
/// for it.
fn with_body(
    request: reqwest::RequestBuilder,
    media_type: &str,
    schema: &Value,
    file: (&str, &str),
) -> reqwest::RequestBuilder {
    let (rel, file_type) = file;
    let bytes = std::fs::read(media(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"));
    if media_type == "multipart/form-data" {
        let mut form = Form::new().part(
            "file",
            Part::bytes(bytes)
                .file_name(rel.to_owned())
                .mime_str(file_type)
                .expect("a valid MIME type"),
        );
        if schema["properties"].get("metadata").is_some() {
            let metadata = json!({ "title": "A documented upload", "identifiers": { "isrc": "US-RC1-76-07839" } });
            form = form.part(
                "metadata",
                Part::text(metadata.to_string())
                    .mime_str("application/json")
                    .expect("a valid MIME type"),
            );
        }
        request.multipart(form)
    } else {
        let declared = if media_type.contains('*') {
            file_type
        } else {
            media_type
        };
        request
            .header(reqwest::header::CONTENT_TYPE, declared)
            .body(bytes)
    }
}

/// The document is JSON, declares OpenAPI 3.1.x, names every operation once
/// and after its handler, and every `$ref` in it points at something inside
/// the document.
#[test]
fn openapi_document_is_well_formed() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("`openapi` is a string");
    assert!(
        version.starts_with("3.1."),
        "OpenAPI version {version} is not 3.1.x"
    );

    let mut ids = BTreeSet::new();
    for operation in operations(&doc) {
        let id = operation.op["operationId"].as_str().unwrap_or_else(|| {
            panic!("{} {} has no operationId", operation.method, operation.path)
        });
        assert!(ids.insert(id), "operationId {id} is used twice");
    }
    assert_eq!(
        ids,
        BTreeSet::from(OPERATION_IDS),
        "operationIds are the handler names"
    );

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty(), "the document uses $ref");
    for reference in refs {
        assert!(
            reference.starts_with("#/"),
            "$ref {reference} points outside the document"
        );
        assert!(
            resolve(&doc, reference).is_some(),
            "$ref {reference} resolves to nothing"
        );
    }
}

/// Every documented path and method is served: each operation, called on a
/// live server with a request built from the document (parameters filled
/// with values that exist after registering one image), answers with a
/// status the document lists for it, a Content-Type documented for that
/// status, and for JSON a body matching the documented schema. Operations
/// that need the operator token also answer 401 as documented without it.
#[tokio::test]
async fn every_documented_operation_is_served_as_documented() {
    let doc = document();
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let rocket = std::fs::read(media("images/rocket.jpg")).unwrap();
    let registered = app.upload_raw(rocket, "image/jpeg").await;
    assert_eq!(registered.status(), 201);
    let registered: Value = registered.json().await.unwrap();
    // A party whose key is not the one in the document's example.
    let (status, party) = app
        .post_json(
            "/v1/parties",
            &json!({"name": "Documented Party", "roles": ["auditor"],
                    "public_key": "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="}),
        )
        .await;
    assert_eq!(status, 201, "{party}");
    let values = [
        ("party_id", party["party_id"].as_str().unwrap().to_owned()),
        (
            "content_id",
            registered["content_id"].as_str().unwrap().to_owned(),
        ),
        ("sha256", registered["sha256"].as_str().unwrap().to_owned()),
        ("index", "0".to_owned()),
        ("tree_size", "1".to_owned()),
        ("from", "1".to_owned()),
        ("to", "1".to_owned()),
        ("node_id", "2".to_owned()),
        (
            "licence_id",
            "0192f0c1-0000-7000-a000-000000000001".to_owned(),
        ),
    ];

    let mut fresh_files = FRESH_FILES.iter();
    let mut called = BTreeSet::new();
    for operation in operations(&doc) {
        let method = Method::from_bytes(operation.method.to_uppercase().as_bytes()).unwrap();
        let url = url_for(&doc, &app, &operation, &values);
        let request_body = deref(&doc, &operation.op["requestBody"]);

        if needs_token(&doc, operation.op) {
            let answer = send(app.client.request(method.clone(), &url)).await;
            assert_eq!(
                answer.status,
                401,
                "{} without the operator token",
                operation.id()
            );
            assert_documented(&doc, &operation, &answer);
        }

        let mut requests = Vec::new();
        match request_body["content"].as_object() {
            None => requests.push(app.client.request(method.clone(), &url)),
            Some(content) => {
                for (media_type, media) in content {
                    if media_type == "application/json" {
                        // JSON bodies are the document's own examples.
                        requests.push(
                            app.client
                                .request(method.clone(), &url)
                                .json(&media["example"]),
                        );
                        continue;
                    }
                    let file = fresh_files.next().unwrap_or_else(|| {
                        panic!("FRESH_FILES has too few files for {}", operation.id())
                    });
                    let request = app.client.request(method.clone(), &url);
                    requests.push(with_body(
                        request,
                        media_type,
                        deref(&doc, &media["schema"]),
                        *file,
                    ));
                }
            }
        }
        for mut request in requests {
            if needs_token(&doc, operation.op) {
                request = request.bearer_auth(&app.token);
            }
            let answer = send(request).await;
            assert_documented(&doc, &operation, &answer);
            if NEED_PEERS.contains(&operation.id()) || NEED_SIGNED_INTENT.contains(&operation.id())
            {
                continue;
            }
            assert!(
                (200..300).contains(&answer.status),
                "{} with values that exist answered {}: {}",
                operation.id(),
                answer.status,
                String::from_utf8_lossy(&answer.body)
            );
        }
        called.insert(operation.id().to_owned());
    }
    assert_eq!(
        called.len(),
        OPERATION_IDS.len(),
        "every operation was called"
    );
}

/// A registration's 201 body has every member the document marks as required
/// for it, nested `ledger` and `iscc` members included, and registering the
/// same bytes again answers 409 with the Problem schema's required members
/// and the `content_id` of the first registration.
#[tokio::test]
async fn registration_bodies_have_every_documented_member() {
    let doc = document();
    let post = operation(&doc, "post_content");
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let rocket = std::fs::read(media("images/rocket.jpg")).unwrap();

    let created = app.upload_raw(rocket.clone(), "image/jpeg").await;
    assert_eq!(created.status(), 201);
    let receipt: Value = created.json().await.unwrap();
    let schema = response_schema(&doc, post.op, "201", "application/json");
    let mut required = BTreeSet::new();
    required_members(&doc, schema, "", &mut required);
    for nested in [
        "/ledger/inclusion_proof",
        "/ledger/checkpoint",
        "/iscc/instance",
        "/iscc/data",
    ] {
        assert!(
            required.contains(nested),
            "the walk reached {nested}: {required:?}"
        );
    }
    for pointer in &required {
        assert!(
            receipt.pointer(pointer).is_some(),
            "the 201 body lacks {pointer}: {receipt:#}"
        );
    }
    assert_conforms(&doc, schema, &receipt, "the 201 body");

    let duplicate = app.upload_raw(rocket, "image/jpeg").await;
    assert_eq!(duplicate.status(), 409);
    let content_type = duplicate.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        media_type_matches("application/problem+json", &content_type),
        "{content_type}"
    );
    let problem: Value = duplicate.json().await.unwrap();
    let mut problem_required = BTreeSet::new();
    required_members(
        &doc,
        &doc["components"]["schemas"]["Problem"],
        "",
        &mut problem_required,
    );
    let mut conflict_required = BTreeSet::new();
    let conflict_schema = response_schema(&doc, post.op, "409", "application/problem+json");
    required_members(&doc, conflict_schema, "", &mut conflict_required);
    assert!(
        conflict_required.is_superset(&problem_required),
        "the 409 schema is a Problem"
    );
    assert!(
        conflict_required.contains("/content_id"),
        "the 409 schema requires content_id"
    );
    for pointer in &conflict_required {
        assert!(
            problem.pointer(pointer).is_some(),
            "the 409 body lacks {pointer}: {problem:#}"
        );
    }
    assert_conforms(&doc, conflict_schema, &problem, "the 409 body");
    assert_eq!(problem["status"], 409);
    assert_eq!(problem["type"], "urn:provreg:problem:duplicate-content");
    assert_eq!(problem["content_id"], receipt["content_id"]);
}
