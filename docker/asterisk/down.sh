#!/usr/bin/env bash
# down.sh - stop the Asterisk started by up.sh. Idempotent; keeps the chroot for the next up.sh.
#   ASTX_DIR=/tmp/call-actions-asterisk  ASTX_ROOT=$ASTX_DIR/root   (same as up.sh)
#   ASTX_PURGE=1   also delete the chroot (the next up.sh is a cold build again)
set -uo pipefail
ASTX_DIR=${ASTX_DIR:-/tmp/call-actions-asterisk}
ROOT=${ASTX_ROOT:-$ASTX_DIR/root}
# host view: /var/run inside the chroot is an absolute symlink to /run
PIDFILE=$ROOT/run/asterisk/asterisk.pid
say() { echo "[asterisk-down] $*" >&2; }
[ "$(id -u)" = 0 ] || { say "must run as root"; exit 1; }
case "$ROOT" in /|"") say "refusing ASTX_ROOT='$ROOT'"; exit 1;; esac

# only ever touch the Asterisk whose root directory is $ROOT: another Asterisk on this host is not ours
PID=""
if [ -f "$PIDFILE" ]; then
  p=$(cat "$PIDFILE" 2>/dev/null || true)
  if [ -n "$p" ] && [ -d "/proc/$p" ] && [ "$(readlink "/proc/$p/root")" = "$(readlink -f "$ROOT")" ]; then PID=$p; fi
fi

if [ -n "$PID" ]; then
  T0=$(date +%s%N)
  chroot "$ROOT" /usr/sbin/asterisk -rx 'core stop now' >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do [ -d "/proc/$PID" ] || break; sleep 0.1; done
  if [ -d "/proc/$PID" ]; then say "core stop now did not end pid $PID in 10 s: SIGTERM"; kill "$PID" 2>/dev/null; sleep 2; fi
  if [ -d "/proc/$PID" ]; then say "SIGKILL pid $PID"; kill -9 "$PID" 2>/dev/null; sleep 0.5; fi
  say "stopped Asterisk pid $PID in $(echo "$(( ($(date +%s%N) - T0) / 1000000 ))" | awk '{printf "%.2f", $1 / 1000}') s"
else
  say "no Asterisk running from $ROOT"
fi
rm -f "$ROOT/run/asterisk/asterisk.ctl" "$PIDFILE" "$ASTX_DIR/asterisk.env"

# up.sh mounts nothing, but unmount whatever someone else mounted under the root (deepest first),
# so that a purge cannot reach through a bind mount
if [ -d "$ROOT" ]; then
  R=$(readlink -f "$ROOT")
  awk -v r="$R" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    say "umount $m"; umount "$m" || umount -l "$m"
  done
fi

if [ "${ASTX_PURGE:-0}" = 1 ]; then
  for d in "$ROOT" "$ROOT.partial"; do
    [ -d "$d" ] || continue
    if awk -v r="$(readlink -f "$d")" '$2 == r || index($2, r "/") == 1 {f=1} END {exit !f}' /proc/mounts; then
      say "still mounted under $d: not purging"; exit 1
    fi
    rm -rf --one-file-system "$d" && say "deleted $d"
  done
fi
exit 0
