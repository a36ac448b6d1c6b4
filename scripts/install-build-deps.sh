#!/usr/bin/env bash
# Installs what the build needs beyond the Rust toolchain when it is missing: OpenSSL's
# headers and pkg-config, for librdkafka's TLS and SASL (Debian packages).
set -euo pipefail

if pkg-config --exists openssl 2>/dev/null || [ -f /usr/include/openssl/ssl.h ]; then
  exit 0
fi
echo "installing libssl-dev and pkg-config (OpenSSL headers for TLS to Kafka)" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq libssl-dev pkg-config >&2
