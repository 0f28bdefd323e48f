#!/usr/bin/env bash
# npm run demo: the local test PBX (installed and started on first use), then one demo call.
set -euo pipefail
cd "$(dirname "$0")/.."
bash docker/asterisk/up.sh >/dev/null
exec node dist/cli.js demo "$@"
