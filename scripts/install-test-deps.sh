#!/usr/bin/env bash
# Installs what `make test` needs on a fresh machine: redis-server (the Redis
# store's tests start their own instance of it), redis-cli (which joins a
# local Redis Cluster for them), chromium (the console's browser tests
# drive it headless) and systemd-analyze (checks deploy/relay.service). Uses apt-get when root; under CI=true a
# tool that is missing and cannot be installed is a failure.
set -euo pipefail

# need TOOL PACKAGE WHAT: install PACKAGE unless TOOL is on the PATH.
need() {
	local tool=$1 pkg=$2 what=$3
	if command -v "$tool" >/dev/null 2>&1; then
		return 0
	fi
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing $pkg with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		if [ -z "${apt_updated:-}" ]; then
			apt-get update -qq
			apt_updated=1
		fi
		apt-get install -y -qq "$pkg" >/dev/null
		return 0
	fi
	if [ "${CI:-}" = "true" ]; then
		echo "$tool is missing and cannot be installed (not root or no apt-get)" >&2
		exit 1
	fi
	echo "warning: $tool not found; $what will be skipped (install $pkg to run them)" >&2
}

need redis-server redis-server "Redis store tests"
# Debian's redis-tools, which redis-server depends on, holds redis-cli.
need redis-cli redis-tools "Redis Cluster tests"
# Debian's package is chromium; some systems name the binary chromium-browser.
if ! command -v chromium-browser >/dev/null 2>&1; then
	need chromium chromium "the console's browser tests"
fi
# deploy/relay.service is checked with systemd-analyze verify.
need systemd-analyze systemd "the systemd unit check"
