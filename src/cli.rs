//! The command line (clap): no subcommand runs the service; `orderflow keys new --name <name>
//! --scopes <scope,…> [--rate-per-second N] [--burst N] [--clusters P,…]` makes an API key.
//! The key goes to stderr, once, and the entry to paste (or append to `auth.keys_file`) to
//! stdout, so `orderflow keys new … >> secrets/keys.toml` keeps only the digest on disk.

use clap::{Args, Parser, Subcommand};

use crate::http::auth::Scope;
use crate::http::auth::keys::{self, KeyEntry};

/// The command line: no subcommand runs the service.
#[derive(Debug, Parser)]
#[command(
    name = "orderflow",
    version,
    about = "Event-driven order intake and processing on Apache Kafka, with a Kafka management API",
    long_about = "Without a subcommand, runs the service: configuration from config/default.toml \
                  (built in), $ORDERFLOW_CONFIG_DIR, the ORDERFLOW_ENV file and ORDERFLOW__… \
                  variables."
)]
pub struct Cli {
    /// What to do instead of running the service.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// API keys.
    Keys {
        /// What to do with keys.
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// `orderflow keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make an API key: the key to stderr (shown once), its entry for `auth.keys_file` to
    /// stdout (so `orderflow keys new … >> secrets/keys.toml` keeps only the digest on disk).
    New(NewKey),
}

/// `orderflow keys new`.
#[derive(Debug, Args)]
pub struct NewKey {
    /// The key's name, in logs, metrics and audit records (1 to 64 of a-z, A-Z, 0-9, '.', '_', '-').
    #[arg(long)]
    pub name: String,
    /// What it may do: orders:write, orders:read, admin:read, admin:write, metrics:read.
    #[arg(long, value_delimiter = ',', required = true, value_parser = parse_scope)]
    pub scopes: Vec<Scope>,
    /// Its own rate (tokens per second) instead of [auth.rate_limit] per_second.
    #[arg(long)]
    pub rate_per_second: Option<u32>,
    /// Its own burst instead of [auth.rate_limit] burst.
    #[arg(long)]
    pub burst: Option<u32>,
    /// Limits its admin scopes to clusters matching these patterns (`*` any run), e.g. dev-*.
    #[arg(long, value_delimiter = ',')]
    pub clusters: Vec<String>,
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::parse(text.trim()).ok_or_else(|| {
        format!(
            "unknown scope {text:?}; one of {}",
            Scope::ALL.map(Scope::as_str).join(", ")
        )
    })
}

impl From<NewKey> for KeyEntry {
    fn from(key: NewKey) -> Self {
        KeyEntry {
            name: key.name,
            sha256: String::new(),
            scopes: key.scopes,
            rate_per_second: key.rate_per_second,
            burst: key.burst,
            clusters: key
                .clusters
                .into_iter()
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect(),
        }
    }
}

/// Makes the key for `entry`: returns the key and the entry, as TOML, with its digest.
pub fn make_key(mut entry: KeyEntry) -> Result<(String, String), String> {
    let key = keys::generate().map_err(|e| format!("no randomness from the system: {e}"))?;
    entry.sha256 = keys::hex(&keys::digest(&key));
    entry.check()?;
    let scopes: Vec<String> = entry
        .scopes
        .iter()
        .map(|s| format!("{:?}", s.as_str()))
        .collect();
    let mut toml = format!(
        "[[keys]]\nname = {:?}\nsha256 = {:?}\nscopes = [{}]\n",
        entry.name,
        entry.sha256,
        scopes.join(", ")
    );
    if let Some(rate) = entry.rate_per_second {
        toml.push_str(&format!("rate_per_second = {rate}\n"));
    }
    if let Some(burst) = entry.burst {
        toml.push_str(&format!("burst = {burst}\n"));
    }
    if !entry.clusters.is_empty() {
        let clusters: Vec<String> = entry.clusters.iter().map(|c| format!("{c:?}")).collect();
        toml.push_str(&format!("clusters = [{}]\n", clusters.join(", ")));
    }
    Ok((key, toml))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("orderflow").chain(line.split_whitespace()))
    }

    fn new_key(line: &str) -> KeyEntry {
        match parse(line).unwrap().command {
            Some(Command::Keys {
                command: KeysCommand::New(key),
            }) => key.into(),
            other => panic!("expected keys new, got {other:?}"),
        }
    }

    #[test]
    fn keys_new_reads_name_scopes_and_limits() {
        let entry = new_key("keys new --name ci --scopes orders:write,admin:read --burst 10");
        assert_eq!(entry.name, "ci");
        assert_eq!(entry.scopes, vec![Scope::OrdersWrite, Scope::AdminRead]);
        assert_eq!(entry.burst, Some(10));
        assert!(parse("keys new --name ci --scopes orders:delete").is_err());
        assert!(parse("keys new --scopes orders:write").is_err());
        assert!(parse("keys new --name ci").is_err());
        assert!(parse("").unwrap().command.is_none());
        let help = parse("keys new --help").unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("--scopes"));
    }

    #[test]
    fn the_printed_entry_holds_the_digest_of_the_printed_key() {
        let entry = new_key("keys new --name ci --scopes orders:write");
        let (key, toml) = make_key(entry).unwrap();
        assert!(toml.contains(&keys::hex(&keys::digest(&key))));
        assert!(!toml.contains(&key));
        assert!(toml.contains("scopes = [\"orders:write\"]"));
        assert!(
            make_key(KeyEntry {
                name: "ci".into(),
                sha256: String::new(),
                scopes: vec![],
                rate_per_second: None,
                burst: None,
                clusters: vec![],
            })
            .is_err()
        );
    }
}
