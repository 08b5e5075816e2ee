#!/usr/bin/env bash
# Installs what `make test` needs on a fresh machine: redis-server (the Redis
# store's tests start their own instance of it). Uses apt-get when root.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing redis-server with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq redis-server >/dev/null
	exit 0
fi
if [ "${CI:-}" = "true" ]; then
	echo "redis-server is missing and cannot be installed (not root or no apt-get)" >&2
	exit 1
fi
echo "warning: redis-server not found; Redis store tests will be skipped (install it to run them)" >&2
