#!/usr/bin/env bash
# Prepares the rdkafka-sys crate the build links (Cargo.toml's [patch.crates-io] points at
# .local/vendor/rdkafka-sys): the crates.io release, copied from cargo's registry, with
# patches/librdkafka/*.patch applied to the librdkafka it bundles.
#
# Why: librdkafka 2.12.1 (bundled by rdkafka-sys 4.10, the newest release) dereferences a
# NULL topic name when a Fetch response reports a leader change for a topic whose id is
# zero; a broker answering a fetch of a deleted topic that way crashed the service with
# SIGSEGV (docs/known-limits.md). Run by every script that builds; idempotent and quick
# once done. Needs only crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

CRATE="rdkafka-sys"
VERSION="4.10.0+2.12.1"
DEST=".local/vendor/rdkafka-sys"
STAMP="$DEST/.orderflow-patches"
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"

wanted="$(cat patches/librdkafka/*.patch | sha256sum | cut -c1-16) $VERSION"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
  exit 0
fi

find_source() {
  ls -d "$CARGO_HOME"/registry/src/*/"$CRATE-$VERSION" 2>/dev/null | head -n 1 || true
}

source_dir="$(find_source)"
if [ -z "$source_dir" ]; then
  # Not downloaded yet: let cargo fetch it through a throwaway manifest (the project's own
  # manifest cannot resolve until this script has run).
  fetcher=".local/fetch-rdkafka-sys"
  mkdir -p "$fetcher/src"
  echo 'fn main() {}' >"$fetcher/src/main.rs"
  cat >"$fetcher/Cargo.toml" <<EOF
[package]
name = "fetch-rdkafka-sys"
version = "0.0.0"
edition = "2021"

[dependencies]
$CRATE = "=${VERSION%%+*}"

[workspace]
EOF
  cargo fetch --manifest-path "$fetcher/Cargo.toml" >&2
  source_dir="$(find_source)"
  [ -n "$source_dir" ] || { echo "could not fetch $CRATE $VERSION" >&2; exit 1; }
fi

rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
cp -a "$source_dir" "$DEST"
for p in patches/librdkafka/*.patch; do
  patch --quiet --forward -p1 -d "$DEST/librdkafka" <"$p"
done
echo "$wanted" >"$STAMP"
echo "prepared $CRATE $VERSION with $(ls patches/librdkafka/*.patch | wc -l) librdkafka patch(es) in $DEST" >&2
