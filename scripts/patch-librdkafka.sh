#!/usr/bin/env bash
# Prepares the two Kafka client crates the build links (Cargo.toml's [patch.crates-io] points
# at .local/vendor/): each the crates.io release, copied from cargo's registry, with our
# patches applied.
#
# - rdkafka-sys: patches/librdkafka/*.patch to the librdkafka it bundles. librdkafka 2.12.1
#   (bundled by rdkafka-sys 4.10, the newest release) dereferences a NULL topic name when a
#   Fetch response reports a leader change for a topic whose id is zero; a broker answering
#   a fetch of a deleted topic that way crashed the service with SIGSEGV.
# - rdkafka: patches/rdkafka/*.patch. rdkafka 0.38 (the newest release) hands librdkafka the
#   time left to a deadline rounded down to whole milliseconds, so every producer's polling
#   thread spun through the last millisecond of each 100 ms poll: about 1% of a core per
#   producer with nothing to do.
#
# docs/known-limits.md says when each can go. Run by every script that builds; idempotent and
# quick once done. Needs only crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"

find_source() {
  ls -d "$CARGO_HOME"/registry/src/*/"$1-$2" 2>/dev/null | head -n 1 || true
}

# prepare CRATE VERSION PATCH_DIR SUBDIR: copies the crate to .local/vendor/CRATE and applies
# PATCH_DIR/*.patch inside SUBDIR of it.
prepare() {
  local crate="$1" version="$2" patches="$3" subdir="$4"
  local dest=".local/vendor/$crate"
  local stamp="$dest/.orderflow-patches"
  local wanted
  wanted="$(cat "$patches"/*.patch | sha256sum | cut -c1-16) $version"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
    return 0
  fi
  local source_dir
  source_dir="$(find_source "$crate" "$version")"
  if [ -z "$source_dir" ]; then
    # Not downloaded yet: let cargo fetch it through a throwaway manifest (the project's own
    # manifest cannot resolve until this script has run).
    local fetcher=".local/fetch-$crate"
    mkdir -p "$fetcher/src"
    echo 'fn main() {}' >"$fetcher/src/main.rs"
    cat >"$fetcher/Cargo.toml" <<EOF
[package]
name = "fetch-$crate"
version = "0.0.0"
edition = "2021"

[dependencies]
$crate = { version = "=${version%%+*}", default-features = false }

[workspace]
EOF
    cargo fetch --manifest-path "$fetcher/Cargo.toml" >&2
    source_dir="$(find_source "$crate" "$version")"
    [ -n "$source_dir" ] || { echo "could not fetch $crate $version" >&2; exit 1; }
  fi
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  cp -a "$source_dir" "$dest"
  for p in "$patches"/*.patch; do
    patch --quiet --forward -p1 -d "$dest/$subdir" <"$p"
  done
  echo "$wanted" >"$stamp"
  echo "prepared $crate $version with $(ls "$patches"/*.patch | wc -l) patch(es) in $dest" >&2
}

prepare rdkafka-sys "4.10.0+2.12.1" patches/librdkafka librdkafka
prepare rdkafka "0.38.0" patches/rdkafka .
