//! The binary's subcommands besides serving: `orderflow keys new --name <name> --scopes
//! <scope,…> [--rate-per-second N] [--burst N]` makes an API key. The key goes to stderr,
//! once, and the entry to paste (or append to `auth.keys_file`) to stdout, so
//! `orderflow keys new … >> keys.toml` keeps only the digest on disk.

use crate::http::auth::Scope;
use crate::http::auth::keys::{self, KeyEntry};

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Run the service (no arguments).
    Serve,
    /// Make a key.
    NewKey(KeyEntry),
    /// Print usage.
    Help,
}

/// Usage text.
pub const USAGE: &str = "usage:
  orderflow                      run the service (config/default.toml, ORDERFLOW_ENV, ORDERFLOW__…)
  orderflow keys new --name NAME --scopes SCOPE[,SCOPE…] [--rate-per-second N] [--burst N]
                    [--clusters PATTERN[,PATTERN…]]  (admin scopes only on those clusters, e.g. dev-*)
                                 make an API key: the key to stderr (shown once), the entry for
                                 auth.keys_file to stdout
scopes: orders:write, orders:read, admin:read, admin:write, metrics:read";

/// Reads the arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Command, String> {
    match args {
        [] => Ok(Command::Serve),
        [flag] if flag == "-h" || flag == "--help" || flag == "help" => Ok(Command::Help),
        [keys, new, rest @ ..] if keys == "keys" && new == "new" => new_key(rest),
        _ => Err(format!("unknown arguments: {}", args.join(" "))),
    }
}

fn new_key(args: &[String]) -> Result<Command, String> {
    let mut name = None;
    let mut scopes = Vec::new();
    let mut rate_per_second = None;
    let mut burst = None;
    let mut clusters = Vec::new();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u32>()
                .map_err(|_| format!("{flag} must be a whole number"))
        };
        match flag.as_str() {
            "--name" => name = Some(value.clone()),
            "--scopes" => {
                for scope in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    scopes.push(
                        Scope::parse(scope).ok_or_else(|| format!("unknown scope {scope:?}"))?,
                    );
                }
            }
            "--rate-per-second" => rate_per_second = Some(number()?),
            "--burst" => burst = Some(number()?),
            "--clusters" => clusters.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            ),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let entry = KeyEntry {
        name: name.ok_or("--name is needed")?,
        sha256: String::new(),
        scopes,
        rate_per_second,
        burst,
        clusters,
    };
    Ok(Command::NewKey(entry))
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

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn keys_new_reads_name_scopes_and_limits() {
        let Command::NewKey(entry) = parse(&args(
            "keys new --name ci --scopes orders:write,admin:read --burst 10",
        ))
        .unwrap() else {
            panic!("expected keys new");
        };
        assert_eq!(entry.name, "ci");
        assert_eq!(entry.scopes, vec![Scope::OrdersWrite, Scope::AdminRead]);
        assert_eq!(entry.burst, Some(10));
        assert!(parse(&args("keys new --name ci --scopes orders:delete")).is_err());
        assert!(parse(&args("keys new --scopes orders:write")).is_err());
        assert_eq!(parse(&[]).unwrap(), Command::Serve);
    }

    #[test]
    fn the_printed_entry_holds_the_digest_of_the_printed_key() {
        let Command::NewKey(entry) =
            parse(&args("keys new --name ci --scopes orders:write")).unwrap()
        else {
            panic!("expected keys new");
        };
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
