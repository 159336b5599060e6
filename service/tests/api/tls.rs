//! TLS on the peer listener: nodes that present certificates from the
//! operators' CA form a cluster over https, and plain HTTP is not served.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::json;

use crate::support::TestApp;

/// A CA and one certificate for `localhost` signed by it, as PEM files.
fn pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two nodes with certificates from one CA form a cluster over https:
/// admission, replication and a write forwarded by the follower all go
/// through TLS, and the peer port refuses plain HTTP.
#[tokio::test]
async fn peers_talk_over_tls() {
    let files = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki(files.path());
    let secret = files.path().join("secret");
    std::fs::write(&secret, "a tls test cluster secret").unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ports = [free_port(), free_port()];
    let mut apps = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = (i + 1).to_string();
        let listen = format!("127.0.0.1:{}", ports[i]);
        let advertise = format!("https://localhost:{}", ports[i]);
        let mut flags = vec![
            "--node-id",
            &id,
            "--peer-listen",
            &listen,
            "--advertise",
            &advertise,
            "--cluster-secret-file",
            secret.to_str().unwrap(),
            "--peer-tls-cert",
            cert.to_str().unwrap(),
            "--peer-tls-key",
            key.to_str().unwrap(),
            "--peer-tls-ca",
            ca.to_str().unwrap(),
        ];
        if i > 0 {
            flags.push("--join");
        }
        apps.push(TestApp::start_with(dir.path(), &flags).await);
    }
    let (status, body) = apps[0]
        .post_json(
            "/v1/cluster/learners",
            &json!({"node_id": 2, "address": format!("https://localhost:{}", ports[1])}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let resp = apps[1]
        .upload_raw(b"sent over tls".to_vec(), "application/octet-stream")
        .await;
    assert_eq!(
        resp.status(),
        201,
        "a follower's write reaches the leader over TLS"
    );

    let plain = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/raft/vote", ports[0]))
        .body("{}")
        .send()
        .await;
    assert!(
        plain.is_err() || plain.is_ok_and(|r| r.status() != 200 && r.status() != 401),
        "plain HTTP is not served on a TLS peer listener"
    );
}
