//! Build metadata for the `orderflow_build_info` metric: the commit comes from
//! `ORDERFLOW_COMMIT` when set (container builds have no `.git`), else from git, else
//! "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ORDERFLOW_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = std::env::var("ORDERFLOW_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=ORDERFLOW_COMMIT={commit}");
}
