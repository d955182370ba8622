//! The real `hookd` binary, driven from outside: by the official Python Svix
//! SDK (the suite in `tests/sdk/`), and over plain HTTP across a restart.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{admin_token, run_with_deadline, Server};
use reqwest::Method;
use serde_json::{json, Value};

/// The whole pytest run; it normally takes a few seconds.
const PYTEST_DEADLINE: Duration = Duration::from_secs(600);

fn sdk_suite_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/sdk");
    dir.canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

#[test]
fn python_svix_sdk_drives_every_api_method() {
    let Some(python) = std::env::var_os("HOOKD_TEST_PYTHON").filter(|p| !p.is_empty()) else {
        println!("skipping: HOOKD_TEST_PYTHON not set (run scripts/test to create the venv)");
        return;
    };
    let dir = tempfile::tempdir().expect("creating a temp dir");
    // The suite runs its webhook receiver on loopback, which the SSRF guard
    // refuses unless told otherwise.
    let server = Server::start_with(
        &dir.path().join("hookd.db"),
        &admin_token(),
        &[("HOOKD_ALLOWED_NETWORKS", "127.0.0.0/8")],
    );

    let suite = sdk_suite_dir();
    let mut pytest = Command::new(&python);
    pytest
        .args(["-m", "pytest", "-q", "-rxXfE", "-p", "no:cacheprovider"])
        .arg(&suite)
        .current_dir(&suite)
        .env("HOOKD_URL", &server.url)
        .env("HOOKD_TOKEN", &server.token)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let run = run_with_deadline(pytest, PYTEST_DEADLINE);
    println!("{}", run.stdout);
    eprintln!("{}", run.stderr);
    assert!(
        run.status.success(),
        "the SDK suite failed ({}), see the pytest output above",
        run.status
    );
}

/// Plain JSON calls with the admin token, each expecting one status.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>, expect: u16) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"));
        assert_eq!(status, expect, "{method} {path} answered {status}: {text}");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: the body is not JSON ({e}): {text}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.call(Method::GET, path, None, 200).await
    }
}

#[tokio::test]
async fn data_survives_a_restart_of_the_binary() {
    let dir = tempfile::tempdir().expect("creating a temp dir");
    let db = dir.path().join("hookd.db");
    let token = admin_token();
    let mut first = Server::start(&db, &token);
    let mut api = Api {
        http: reqwest::Client::new(),
        base: first.url.clone(),
        token: token.clone(),
    };

    let app = api
        .call(
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Durable", "uid": "durable-app", "metadata": {"k": "v"}})),
            201,
        )
        .await;
    let endpoint = api
        .call(
            Method::POST,
            "/api/v1/app/durable-app/endpoint",
            Some(json!({
                "url": "http://127.0.0.1:9/durable",
                "uid": "durable-ep",
                "channels": ["c1"],
                "headers": {"X-Durable": "yes"},
            })),
            201,
        )
        .await;
    let secret = api
        .get("/api/v1/app/durable-app/endpoint/durable-ep/secret")
        .await;
    let payload = json!({"order": 42, "items": ["a", "b"], "note": "überall"});
    let message = api
        .call(
            Method::POST,
            "/api/v1/app/durable-app/msg?with_content=true",
            Some(json!({"eventId": "durable-evt", "eventType": "durable.test", "payload": payload, "channels": ["c1"]})),
            202,
        )
        .await;
    assert_eq!(message["payload"], payload);

    let exit = first.terminate();
    assert!(
        exit.success(),
        "hookd should exit cleanly on SIGTERM, got {exit}"
    );
    drop(first);

    let second = Server::start(&db, &token);
    api.base = second.url.clone();
    assert_eq!(api.get("/api/v1/app/durable-app").await, app);
    assert_eq!(
        api.get("/api/v1/app/durable-app/endpoint/durable-ep").await,
        endpoint
    );
    assert_eq!(
        api.get("/api/v1/app/durable-app/endpoint/durable-ep/secret")
            .await,
        secret
    );
    assert_eq!(
        api.get("/api/v1/app/durable-app/endpoint/durable-ep/headers")
            .await,
        json!({"headers": {"X-Durable": "yes"}, "sensitive": []})
    );
    assert_eq!(
        api.get("/api/v1/app/durable-app/msg/durable-evt?with_content=true")
            .await,
        message
    );

    let destinations = api
        .get("/api/v1/app/durable-app/msg/durable-evt/endpoint")
        .await;
    let ids: Vec<&Value> = destinations["data"]
        .as_array()
        .expect("a data array")
        .iter()
        .map(|d| &d["id"])
        .collect();
    assert_eq!(
        ids,
        vec![&endpoint["id"]],
        "the delivery to the endpoint survives too: {destinations}"
    );

    // The restarted server still enforces what it stored: the uid is taken.
    api.call(
        Method::POST,
        "/api/v1/app",
        Some(json!({"name": "Again", "uid": "durable-app"})),
        409,
    )
    .await;
}
