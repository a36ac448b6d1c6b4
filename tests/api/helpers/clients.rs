//! Clients nobody here wrote: confluent-kafka's Python schema registry client and its Avro
//! and JSON serializers, driven through tests/clients/registry.py (installed by
//! scripts/install-test-clients.sh into .local/clients; `ORDERFLOW_TEST_PYTHON` names
//! another interpreter).

use std::path::{Path, PathBuf};

use serde_json::Value;

fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("ORDERFLOW_TEST_PYTHON") {
        return path.into();
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".local/clients/bin/python");
    assert!(
        local.exists(),
        "confluent-kafka's Python clients are not installed: run scripts/install-test-clients.sh \
         (scripts/test.sh does) or set ORDERFLOW_TEST_PYTHON"
    );
    local
}

/// Runs `registry.py` with `args` and answers the JSON it prints; fails the test with its
/// error output when it fails.
pub async fn registry_client(args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/registry.py");
    let output = tokio::process::Command::new(python())
        .arg(script)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "registry.py {args:?} failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("registry.py printed {stdout:?}: {e}"))
}
