//! `docker-compose.yml` against the binary it runs, checked by parsing the
//! file, without starting containers: every node is configured only with
//! flags and variables that `provreg serve --help` lists, and the nodes add
//! up to one cluster that one node forms and the others join.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_norway::Value;

/// One service that runs the provreg image, as compose would start it.
struct Node {
    /// The compose service name.
    name: String,
    /// Its `environment`, with every value as the text the process sees.
    env: BTreeMap<String, String>,
    /// Its `command`, split into arguments.
    command: Vec<String>,
    /// The paths inside the container where its `secrets` and `configs`
    /// are mounted, each with the top-level entry it comes from.
    mounts: BTreeMap<String, String>,
}

impl Node {
    /// Whether the node starts with `--join` (or `PROVREG_JOIN`) and so
    /// waits to be added instead of forming a cluster.
    fn joins(&self) -> bool {
        self.command.iter().any(|arg| arg == "--join")
            || self.env.get("PROVREG_JOIN").is_some_and(|v| v == "true")
    }
}

/// The compose file at the workspace root, with its `<<` merge keys
/// applied the way compose applies them.
fn compose_file() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut compose: Value = serde_norway::from_str(&text).unwrap();
    compose.apply_merge().unwrap();
    compose
}

/// A scalar as the text a process would get for it.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// `environment`, in either of compose's forms: a mapping or a list of
/// `KEY=VALUE` strings.
fn environment(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        None => BTreeMap::new(),
        Some(Value::Mapping(map)) => map.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
        Some(Value::Sequence(list)) => list
            .iter()
            .map(|item| {
                let item = scalar(item);
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        Some(other) => panic!("environment is neither a mapping nor a list: {other:?}"),
    }
}

/// `command`, in either of compose's forms: a list or one string.
fn command(service: &Value) -> Vec<String> {
    match service.get("command") {
        None => Vec::new(),
        Some(Value::Sequence(list)) => list.iter().map(scalar).collect(),
        Some(Value::String(line)) => line.split_whitespace().map(str::to_owned).collect(),
        Some(other) => panic!("command is neither a list nor a string: {other:?}"),
    }
}

/// Where a service's `secrets` (kind "secrets") or `configs` (kind
/// "configs") appear in its container, in the short or the long syntax.
fn mounts(service: &Value, kind: &str) -> Vec<(String, String)> {
    let Some(Value::Sequence(list)) = service.get(kind) else {
        return Vec::new();
    };
    list.iter()
        .map(|item| {
            let (source, target) = match item {
                Value::Mapping(_) => (scalar(&item["source"]), item.get("target").map(scalar)),
                short => (scalar(short), None),
            };
            let target = match (kind, target) {
                (_, Some(target)) if target.starts_with('/') => target,
                ("secrets", Some(name)) => format!("/run/secrets/{name}"),
                ("secrets", None) => format!("/run/secrets/{source}"),
                (_, Some(name)) => format!("/{name}"),
                (_, None) => format!("/{source}"),
            };
            (target, source)
        })
        .collect()
}

/// The services that build the provreg image: the nodes.
fn nodes(compose: &Value) -> Vec<Node> {
    let Value::Mapping(services) = &compose["services"] else {
        panic!("docker-compose.yml has no services");
    };
    let nodes: Vec<Node> = services
        .iter()
        .filter(|(_, service)| service.get("build").is_some())
        .map(|(name, service)| Node {
            name: scalar(name),
            env: environment(service),
            command: command(service),
            mounts: mounts(service, "secrets")
                .into_iter()
                .chain(mounts(service, "configs"))
                .collect(),
        })
        .collect();
    assert!(!nodes.is_empty(), "no service builds the provreg image");
    nodes
}

/// The `PROVREG_*` variables and `--flags` that `provreg serve --help`
/// lists: the whole of what a node accepts.
fn accepted() -> (BTreeSet<String>, BTreeSet<String>) {
    let output = Command::new(env!("CARGO_BIN_EXE_provreg"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success(), "provreg serve --help failed");
    let help = String::from_utf8(output.stdout).unwrap();
    let mut vars = BTreeSet::new();
    let mut flags = BTreeSet::new();
    for line in help.lines() {
        // Option lines start with the option itself ("  -h, --help",
        // "      --listen <LISTEN>"); prose lines only mention flags.
        let trimmed = line.trim_start();
        if trimmed.starts_with('-') {
            flags.extend(
                trimmed
                    .split([' ', ','])
                    .take_while(|word| word.is_empty() || word.starts_with('-'))
                    .filter(|word| word.starts_with("--"))
                    .map(str::to_owned),
            );
        }
        let mut rest = line;
        while let Some(at) = rest.find("[env: ") {
            rest = &rest[at + "[env: ".len()..];
            let end = rest.find(['=', ']']).unwrap();
            vars.insert(rest[..end].to_owned());
        }
    }
    assert!(
        vars.contains("PROVREG_LISTEN") && flags.contains("--listen"),
        "the help lists no options: {help}"
    );
    (vars, flags)
}

/// Every node is configured only through variables and flags the binary
/// accepts, so a renamed or removed option fails here rather than being
/// silently ignored inside a container.
#[test]
fn compose_nodes_use_only_options_the_binary_accepts() {
    let (vars, flags) = accepted();
    for node in nodes(&compose_file()) {
        for key in node.env.keys().filter(|k| k.starts_with("PROVREG_")) {
            assert!(
                vars.contains(key),
                "{}: {key} is not an option of provreg serve (it accepts {vars:?})",
                node.name
            );
        }
        if let Some(first) = node.command.first() {
            assert_eq!(
                first, "serve",
                "{}: the command must run `serve`",
                node.name
            );
        }
        for arg in node.command.iter().filter(|arg| arg.starts_with("--")) {
            let flag = arg.split_once('=').map_or(arg.as_str(), |(flag, _)| flag);
            assert!(
                flags.contains(flag),
                "{}: {flag} is not a flag of provreg serve (it accepts {flags:?})",
                node.name
            );
        }
        if let Some(join) = node.env.get("PROVREG_JOIN") {
            assert!(
                join == "true" || join == "false",
                "{}: PROVREG_JOIN is {join:?}; the binary reads true or false",
                node.name
            );
        }
    }
}

/// The nodes make one cluster: distinct node ids, exactly one node that
/// forms it while the others join, every node with its cluster secret file
/// mounted, a peer listener and an advertised URL peers can reach, and at
/// most one origin.
#[test]
fn compose_nodes_form_one_cluster() {
    let compose = compose_file();
    let nodes = nodes(&compose);

    let mut ids = BTreeSet::new();
    for node in &nodes {
        // The binary's default, as for a node that sets no id.
        let id = node.env.get("PROVREG_NODE_ID").map_or("1", String::as_str);
        let id: u64 = id.parse().unwrap();
        assert!(ids.insert(id), "{}: node id {id} is used twice", node.name);
    }

    let formers: Vec<&Node> = nodes.iter().filter(|n| !n.joins()).collect();
    assert_eq!(
        formers.len(),
        1,
        "exactly one node forms the cluster; these would each form their own: {:?}",
        formers.iter().map(|n| &n.name).collect::<Vec<_>>()
    );

    // Every node takes part in admission, the one forming the cluster
    // included: it proves the secret to each node it adds.
    for node in &nodes {
        let secret_file = node.env.get("PROVREG_CLUSTER_SECRET_FILE");
        let secret_file = secret_file.unwrap_or_else(|| {
            panic!("{}: no PROVREG_CLUSTER_SECRET_FILE", node.name);
        });
        assert!(
            node.mounts.contains_key(secret_file),
            "{}: PROVREG_CLUSTER_SECRET_FILE {secret_file} is not where any of its secrets or configs is mounted ({:?})",
            node.name,
            node.mounts
        );
        assert!(
            node.env.contains_key("PROVREG_PEER_LISTEN"),
            "{}: no PROVREG_PEER_LISTEN",
            node.name
        );
        let advertise = node.env.get("PROVREG_ADVERTISE");
        let advertise = advertise.unwrap_or_else(|| panic!("{}: no PROVREG_ADVERTISE", node.name));
        let url = reqwest::Url::parse(advertise).unwrap();
        let host = url.host_str().unwrap_or_default();
        assert!(
            !matches!(host, "" | "0.0.0.0" | "[::]"),
            "{}: PROVREG_ADVERTISE {advertise} is not an address peers can reach",
            node.name
        );
    }

    // The origin is fixed when the cluster forms; a joiner naming another
    // would be refused on its next start.
    let origins: BTreeSet<&String> = nodes
        .iter()
        .filter_map(|n| n.env.get("PROVREG_ORIGIN"))
        .collect();
    assert!(origins.len() <= 1, "more than one origin: {origins:?}");
}

/// Every secret and config a service mounts is defined at the top level,
/// or compose refuses to start.
#[test]
fn compose_secrets_and_configs_are_defined() {
    let compose = compose_file();
    let Value::Mapping(services) = &compose["services"] else {
        panic!("docker-compose.yml has no services");
    };
    for (name, service) in services {
        for kind in ["secrets", "configs"] {
            for (target, source) in mounts(service, kind) {
                assert!(
                    compose
                        .get(kind)
                        .and_then(|defined| defined.get(source.as_str()))
                        .is_some(),
                    "{}: {kind} entry {source:?} (mounted at {target}) is not defined under top-level {kind}",
                    scalar(name)
                );
            }
        }
    }
}
