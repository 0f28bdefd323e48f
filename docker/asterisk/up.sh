#!/usr/bin/env bash
# up.sh - a real Asterisk 22 (Debian sid packages) in a debootstrap chroot on a Debian 12 host, for the
# call-actions integration tests and demo. Needs root; installs its own host tools with apt-get.
# Idempotent:
#   * no chroot yet       -> debootstrap sid (minbase) + apt-get install asterisk inside (~40-60 s)
#   * chroot present      -> reused as is (no network needed)
#   * configs are rebuilt on every run; Asterisk is restarted only when they differ from the running ones
#   * waits until ARI answers, then writes the connection details to $ASTX_DIR/asterisk.env
# Nothing is mounted into the chroot (Asterisk needs neither /proc nor /dev/pts). Stop it with down.sh.
#
# Configs: generated base configs first, then the repo's dialplan/*.conf (what admins include),
# then docker/asterisk/conf/*.conf (the test/demo PBX). A later file with the same name wins.
#
# Environment (all optional):
#   ASTX_DIR=/tmp/call-actions-asterisk   work folder (logs, env file)
#   ASTX_ROOT=$ASTX_DIR/root              the chroot
#   ASTX_MIRROR=http://deb.debian.org/debian   ASTX_SUITE=sid
#   ASTX_DEBS_TARBALL=path                offline build from a `debootstrap --make-tarball` file made with the
#                                         same mirror URL and --include=<the packages in PKGS below>
#   ASTX_ARI_APP=call-actions  ASTX_ARI_USER=call-actions  ASTX_ARI_PASS=call-actions-test
#                                         (ASTX_ARI_APP only reaches asterisk.env: the dialplan names the app)
#   ASTX_AMI_USER=call-actions ASTX_AMI_PASS=call-actions-test     (test-only credentials)
#   ASTX_HTTP_PORT=8088  ASTX_SIP_PORT=5060  ASTX_AMI_PORT=5038    (all bound to 127.0.0.1 only)
#   ASTX_VERBOSE=3                        verbosity written to $ROOT/var/log/asterisk/messages.log
#   ASTX_START_TIMEOUT=30                 seconds to wait for ARI
#   ASTX_PROMPT_TEXT=...                  text of the queue prompt custom/call-actions-press-pound
set -euo pipefail

REPO=$(cd -P "$(dirname "$0")/../.." && pwd)
ASTX_DIR=${ASTX_DIR:-/tmp/call-actions-asterisk}
ROOT=${ASTX_ROOT:-$ASTX_DIR/root}
MIRROR=${ASTX_MIRROR:-http://deb.debian.org/debian}
SUITE=${ASTX_SUITE:-sid}
APP=${ASTX_ARI_APP:-call-actions}
ARI_USER=${ASTX_ARI_USER:-call-actions}
ARI_PASS=${ASTX_ARI_PASS:-call-actions-test}
AMI_USER=${ASTX_AMI_USER:-call-actions}
AMI_PASS=${ASTX_AMI_PASS:-call-actions-test}
HTTP_PORT=${ASTX_HTTP_PORT:-8088}
SIP_PORT=${ASTX_SIP_PORT:-5060}
AMI_PORT=${ASTX_AMI_PORT:-5038}
VERBOSE=${ASTX_VERBOSE:-3}
START_TIMEOUT=${ASTX_START_TIMEOUT:-30}
PROMPT_TEXT=${ASTX_PROMPT_TEXT:-All our agents are busy. Press the pound key to leave the queue and receive a text message with a link to book a call back.}
PKGS="asterisk asterisk-modules asterisk-core-sounds-en-gsm asterisk-moh-opsound-gsm"
LOG=$ASTX_DIR/asterisk-console.log
# /var/run in the chroot is an ABSOLUTE symlink to /run: seen from the host it would point at the
# host's /run, so every host-side path goes through $ROOT/run
PIDFILE=$ROOT/run/asterisk/asterisk.pid
SOUNDS=$ROOT/usr/local/share/asterisk/sounds

say() { echo "[asterisk-up] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot)"
case "$ROOT" in /|"") die "refusing ASTX_ROOT='$ROOT'";; esac
mkdir -p "$ASTX_DIR"
T0=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - T0) / 1000000 ))" | awk '{printf "%.1f", $1 / 1000}'; }

# ---------------------------------------------------------------- 0. host tools
# command -> Debian package; one apt-get run for everything that is missing
missing=()
for pair in debootstrap:debootstrap sipp:sip-tester espeak-ng:espeak-ng sox:sox curl:curl bc:bc ss:iproute2 chromium:chromium; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing on the host: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # a fresh machine (or container) has no package lists yet; retry after an update otherwise too
  if ! apt-get install -y -q "${missing[@]}" > "$ASTX_DIR/apt-host.log" 2>&1; then
    { apt-get update -q && apt-get install -y -q "${missing[@]}"; } >> "$ASTX_DIR/apt-host.log" 2>&1 \
      || { tail -20 "$ASTX_DIR/apt-host.log" >&2; die "apt-get install ${missing[*]} failed (log: $ASTX_DIR/apt-host.log)"; }
  fi
  say "host tools installed at $(elapsed) s"
fi

# Japanese TTS runs on the host, where the service runs: Open JTalk and its dictionary are in
# Debian's main component, its voice only in contrib, which a stock Debian 12 lists do not enable
JTALK_VOICE_DIR=/usr/share/hts-voice/nitech-jp-atr503-m001
jtalk=()
command -v open_jtalk >/dev/null 2>&1 || jtalk+=(open-jtalk)
[ -d /var/lib/mecab/dic/open-jtalk/naist-jdic ] || jtalk+=(open-jtalk-mecab-naist-jdic)
[ -d "$JTALK_VOICE_DIR" ] || jtalk+=(hts-voice-nitech-jp-atr503-m001)
if [ ${#jtalk[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  if [ -d "$JTALK_VOICE_DIR" ] || [ -n "$(apt-cache policy hts-voice-nitech-jp-atr503-m001 2>/dev/null | awk '/Candidate:/ && $2 != "(none)"')" ]; then
    :
  else
    # deb822 (Debian 12's /etc/apt/sources.list.d/debian.sources) or one-line sources.list: add
    # contrib next to main on the Debian archive entries only; a second run finds it there
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      awk '
        /^[[:space:]]*$/ { deb = 0 }
        /^URIs:.*debian/ { deb = 1 }
        { lines[NR] = $0; isdeb[NR] = deb }
        END {
          # a stanza is Debian only once its URIs line is seen; mark the whole stanza
          for (i = NR; i >= 1; i--) { if (lines[i] ~ /^[[:space:]]*$/) d = 0; else if (isdeb[i]) d = 1; mark[i] = d }
          for (i = 1; i <= NR; i++) {
            l = lines[i]
            if (mark[i] && l ~ /^Components:/ && l ~ /[[:space:]]main([[:space:]]|$)/ && l !~ /[[:space:]]contrib([[:space:]]|$)/) l = l " contrib"
            print l
          }
        }' "$f" > "$f.astx" && { cmp -s "$f" "$f.astx" && rm -f "$f.astx" || mv "$f.astx" "$f"; }
    done
    if [ -f /etc/apt/sources.list ]; then
      sed -E -i.astx-bak '/^[[:space:]]*deb(-src)?[[:space:]].*debian.*[[:space:]]main([[:space:]]|$)/{/[[:space:]]contrib([[:space:]]|$)/!s/[[:space:]]main([[:space:]]|$)/ main contrib\1/}' /etc/apt/sources.list
      rm -f /etc/apt/sources.list.astx-bak
    fi
    say "enabled Debian's contrib component for the Japanese voice"
    apt-get update -q >> "$ASTX_DIR/apt-host.log" 2>&1 || true
  fi
  say "installing on the host (Japanese TTS): ${jtalk[*]}"
  if ! apt-get install -y -q --no-install-recommends "${jtalk[@]}" >> "$ASTX_DIR/apt-host.log" 2>&1; then
    { apt-get update -q && apt-get install -y -q --no-install-recommends "${jtalk[@]}"; } >> "$ASTX_DIR/apt-host.log" 2>&1 \
      || { tail -20 "$ASTX_DIR/apt-host.log" >&2; die "apt-get install ${jtalk[*]} failed (log: $ASTX_DIR/apt-host.log)"; }
  fi
fi

mounted_under() { awk -v r="$1" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts; }

running_pid() { # the pid of the Asterisk whose root is $ROOT, if any
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  [ "$(readlink "/proc/$pid/root")" = "$(readlink -f "$ROOT")" ] || return 1
  echo "$pid"
}

# ---------------------------------------------------------------- 1. the chroot
if [ ! -f "$ROOT/.astx-ready" ]; then
  if [ -e "$ROOT" ]; then
    [ -z "$(mounted_under "$(readlink -f "$ROOT")")" ] || die "something is mounted under $ROOT; unmount it first"
    say "$ROOT exists but is incomplete (no .astx-ready): removing it"
    rm -rf --one-file-system "$ROOT"
  fi
  # built aside and renamed at the end, so an interrupted build never looks finished
  PART=$ROOT.partial
  [ -z "$(mounted_under "$PART")" ] || die "something is mounted under $PART"
  rm -rf --one-file-system "$PART"
  mkdir -p "$(dirname "$ROOT")"
  say "debootstrap --variant=minbase $SUITE -> $PART (cold build, about a minute)"
  if [ -n "${ASTX_DEBS_TARBALL:-}" ]; then
    debootstrap --variant=minbase --unpack-tarball="$(readlink -f "$ASTX_DEBS_TARBALL")" \
      --include="${PKGS// /,}" "$SUITE" "$PART" "$MIRROR" > "$ASTX_DIR/debootstrap.log" 2>&1 \
      || { tail -20 "$ASTX_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $ASTX_DIR/debootstrap.log)"; }
  else
    debootstrap --variant=minbase "$SUITE" "$PART" "$MIRROR" > "$ASTX_DIR/debootstrap.log" 2>&1 \
      || { tail -20 "$ASTX_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $ASTX_DIR/debootstrap.log)"; }
  fi
  say "debootstrap done at $(elapsed) s"
  # a mirror may serve a frozen sid snapshot whose Release is past Valid-Until; apt would refuse it
  echo 'Acquire::Check-Valid-Until "false";' > "$PART/etc/apt/apt.conf.d/99astx-no-valid-until"
  # keeps package maintainer scripts from trying to start services inside the chroot
  printf '#!/bin/sh\nexit 101\n' > "$PART/usr/sbin/policy-rc.d"; chmod +x "$PART/usr/sbin/policy-rc.d"
  if [ -z "${ASTX_DEBS_TARBALL:-}" ]; then
    # minbase + apt-get is ~10 s faster than debootstrap --include; the lists debootstrap leaves are
    # usually enough, so apt-get update only runs when the install fails without it
    inst() { chroot "$PART" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PKGS; }
    if ! inst > "$ASTX_DIR/apt.log" 2>&1; then
      chroot "$PART" apt-get update -q >> "$ASTX_DIR/apt.log" 2>&1 || true
      inst >> "$ASTX_DIR/apt.log" 2>&1 || { tail -20 "$ASTX_DIR/apt.log" >&2; die "apt-get install in the chroot failed (log: $ASTX_DIR/apt.log)"; }
    fi
    say "apt-get install done at $(elapsed) s"
  fi
  chroot "$PART" apt-get clean
  chroot "$PART" dpkg-query -W $PKGS > "$PART/.astx-ready"
  mv "$PART" "$ROOT"
  say "chroot ready: $(tr '\t\n' '= ' < "$ROOT/.astx-ready")"
fi
[ -x "$ROOT/usr/sbin/asterisk" ] || die "$ROOT/usr/sbin/asterisk missing; delete $ROOT/.astx-ready to rebuild"

# ---------------------------------------------------------------- 2. configs
ETC=$ROOT/etc/asterisk
[ -d "$ROOT/etc/asterisk.dist" ] || cp -a "$ETC" "$ROOT/etc/asterisk.dist"   # pristine package samples, for reference
NEW=$(mktemp -d "$ASTX_DIR/etc.XXXXXX")
trap 'rm -rf "$NEW"' EXIT

cat > "$NEW/asterisk.conf" <<EOF
[directories](!)
astcachedir => /var/cache/asterisk
astetcdir => /etc/asterisk
astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules
astvarlibdir => /var/lib/asterisk
astdbdir => /var/lib/asterisk
astkeydir => /var/lib/asterisk
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => /var/spool/asterisk
astrundir => /var/run/asterisk
astlogdir => /var/log/asterisk
astsbindir => /usr/sbin

[options]
verbose = $VERBOSE
debug = 0
maxfiles = 8192
EOF
# the module folder is per architecture
MODDIR=$(cd "$ROOT" && ls -d usr/lib/*/asterisk/modules 2>/dev/null | head -1)
[ -n "$MODDIR" ] && sed -i "s|^astmoddir => .*|astmoddir => /$MODDIR|" "$NEW/asterisk.conf"

cat > "$NEW/modules.conf" <<'EOF'
[modules]
autoload = yes
; do NOT noload res_websocket_client.so: res_ari.so and app_stasis.so need it in Asterisk 22
; the rest decline without config, duplicate other modules, or only add noise/CPU in a test PBX
noload => app_voicemail_odbc.so
noload => app_voicemail_imap.so
noload => app_minivm.so
noload => app_festival.so
noload => app_followme.so
noload => app_amd.so
noload => app_agent_pool.so
noload => app_alarmreceiver.so
noload => app_adsiprog.so
noload => app_getcpeid.so
noload => res_adsi.so
noload => chan_iax2.so
noload => chan_unistim.so
noload => chan_console.so
noload => chan_motif.so
noload => chan_websocket.so
noload => res_xmpp.so
noload => pbx_lua.so
noload => pbx_ael.so
noload => pbx_dundi.so
noload => res_calendar.so
noload => res_calendar_caldav.so
noload => res_calendar_ews.so
noload => res_calendar_exchange.so
noload => res_calendar_icalendar.so
noload => res_odbc.so
noload => func_odbc.so
noload => res_odbc_transaction.so
noload => res_config_odbc.so
noload => res_config_pgsql.so
noload => res_config_ldap.so
noload => res_config_mysql.so
noload => res_snmp.so
noload => res_hep.so
noload => res_hep_pjsip.so
noload => res_hep_rtcp.so
noload => res_prometheus.so
noload => res_statsd.so
noload => res_phoneprov.so
noload => res_pjsip_phoneprov_provider.so
noload => res_pjsip_notify.so
noload => res_pjsip_config_wizard.so
noload => res_stun_monitor.so
noload => res_resolver_unbound.so
noload => res_stir_shaken.so
noload => res_pjsip_stir_shaken.so
noload => res_geolocation.so
noload => res_pjsip_geolocation.so
noload => res_aeap.so
noload => res_speech_aeap.so
noload => res_parking.so
noload => res_smdi.so
noload => res_clialiases.so
noload => cdr_csv.so
noload => cdr_custom.so
noload => cdr_manager.so
noload => cdr_pgsql.so
noload => cdr_radius.so
noload => cdr_sqlite3_custom.so
noload => cdr_tds.so
noload => cdr_odbc.so
noload => cdr_adaptive_odbc.so
noload => cdr_beanstalkd.so
noload => cel_custom.so
noload => cel_manager.so
noload => cel_pgsql.so
noload => cel_radius.so
noload => cel_sqlite3_custom.so
noload => cel_tds.so
noload => cel_odbc.so
noload => cel_beanstalkd.so
EOF

# empty files silence "Unable to load config file" for the modules we keep
for f in pjproject.conf websocket_client.conf voicemail.conf acl.conf features.conf udptl.conf stasis.conf ccss.conf cel.conf confbridge.conf queuerules.conf res_fax.conf; do
  : > "$NEW/$f"
done
printf '[general]\nenable = no\n' > "$NEW/cdr.conf"
cp "$ROOT/etc/asterisk.dist/indications.conf" "$NEW/indications.conf"

# messages.log is the file tests read ($ROOT/var/log/asterisk/messages.log, ASTERISK_LOG in the env file)
cat > "$NEW/logger.conf" <<'EOF'
[general]
dateformat = %F %T.%3q
[logfiles]
console => notice,warning,error
messages.log => notice,warning,error,verbose
EOF

cat > "$NEW/http.conf" <<EOF
[general]
enabled = yes
bindaddr = 127.0.0.1
bindport = $HTTP_PORT
; the default of 100 is too low: an ARI client opens many short HTTP connections, the extra requests
; are dropped ("HTTP session count exceeded") and ari-client waits for an answer forever
sessionlimit = 1000
EOF

cat > "$NEW/ari.conf" <<EOF
[general]
enabled = yes
pretty = no

[$ARI_USER]
type = user
read_only = no
password = $ARI_PASS
password_format = plain
EOF

cat > "$NEW/manager.conf" <<EOF
[general]
enabled = yes
port = $AMI_PORT
bindaddr = 127.0.0.1

[$AMI_USER]
secret = $AMI_PASS
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = all
write = all
EOF

# kept below 16000, where SIPp test callers put their own RTP ports
cat > "$NEW/rtp.conf" <<'EOF'
[general]
rtpstart = 10000
rtpend = 15998
EOF

cat > "$NEW/res_http_media_cache.conf" <<'EOF'
[general]
timeout_secs = 10
EOF

cat > "$NEW/musiconhold.conf" <<'EOF'
[default]
mode = files
directory = moh
EOF

cat > "$NEW/pjsip.conf" <<EOF
[global]
type = global
; From user picks a named endpoint first (tester-info, agent); anything else from 127.0.0.1 is "tester"
endpoint_identifier_order = username,ip,anonymous
user_agent = call-actions-test-pbx

[transport-udp]
type = transport
protocol = udp
bind = 127.0.0.1:$SIP_PORT

; media stays on 127.0.0.1 too, so nothing leaves the machine
[endpoint-common](!)
type = endpoint
transport = transport-udp
context = from-test
disallow = all
allow = ulaw,alaw
direct_media = no
rtp_symmetric = yes
media_address = 127.0.0.1
bind_rtp_to_media_address = yes

[tester](endpoint-common)
dtmf_mode = rfc4733
aors = tester

[tester]
type = aor
contact = sip:tester@127.0.0.1:5070

[tester]
type = identify
endpoint = tester
match = 127.0.0.1

; DTMF as SIP INFO; selected by From user "tester-info"
[tester-info](endpoint-common)
dtmf_mode = info

; queue member PJSIP/agent. Qualified so that it shows as unavailable (and the queue does not ring it)
; unless something answers OPTIONS on 127.0.0.1:5080; a test agent can force a check with
; "pjsip qualify agent" instead of waiting for the next round
[agent](endpoint-common)
dtmf_mode = rfc4733
aors = agent

[agent]
type = aor
max_contacts = 1
contact = sip:agent@127.0.0.1:5080
qualify_frequency = 5
qualify_timeout = 1.0

; an internal phone placing outbound calls (Salesforce logging tests): selected by From user "staff";
; its calls start in [from-internal], the context the service treats as outbound
[staff](endpoint-common)
context = from-internal
dtmf_mode = rfc4733

; a carrier trunk for those outbound calls: a SIPp server on 127.0.0.1:5090 answers them, or not
[carrier](endpoint-common)
aors = carrier

[carrier]
type = aor
contact = sip:carrier@127.0.0.1:5090

; two office phones (who-answered tests, test/helpers/device.ts): SIPp servers on 127.0.0.1:5081 and
; 5082 answer, ring or transfer; their own calls (From user 2601 / 2602) start in [sf-office].
; 2602 may pick up what rings on 2601 (Pickup() with call and pickup group 1)
[office-phone](!,endpoint-common)
context = sf-office
dtmf_mode = rfc4733
call_group = 1
pickup_group = 1

[2601](office-phone)
aors = 2601

[2601]
type = aor
contact = sip:2601@127.0.0.1:5081

[2602](office-phone)
aors = 2602

[2602]
type = aor
contact = sip:2602@127.0.0.1:5082
EOF

# the admin-facing snippets first, then the test/demo PBX (which #includes them)
shopt -s nullglob
for f in "$REPO"/dialplan/*.conf "$REPO"/docker/asterisk/conf/*.conf; do cp "$f" "$NEW/"; done
shopt -u nullglob

sum_dir() { (cd "$1" && find . -maxdepth 1 -type f -name '*.conf' | LC_ALL=C sort | xargs md5sum | md5sum | cut -d' ' -f1); }
CHANGED=1
if [ -d "$ETC" ] && [ -f "$ETC/.astx-generated" ] && [ "$(sum_dir "$NEW")" = "$(sum_dir "$ETC")" ]; then CHANGED=0; fi
if [ $CHANGED = 1 ]; then
  rm -rf "$ETC"; mkdir -p "$ETC"; cp "$NEW"/*.conf "$ETC/"; touch "$ETC/.astx-generated"
  say "configs written to $ETC"
fi

# ---------------------------------------------------------------- 3. sounds
# sound:custom/NAME resolves through the package symlink /usr/share/asterisk/sounds/custom -> here
mkdir -p "$SOUNDS" "$ROOT/run/asterisk" "$ROOT/var/log/asterisk"
PROMPT=$SOUNDS/call-actions-press-pound.wav
if [ ! -s "$PROMPT" ] || [ "$(cat "$PROMPT.txt" 2>/dev/null)" != "$PROMPT_TEXT" ]; then
  espeak-ng -v en-us -s 150 -w "$NEW/prompt-22k.wav" "$PROMPT_TEXT"
  # Asterisk's wav format is 8 kHz, mono, 16-bit signed PCM
  sox "$NEW/prompt-22k.wav" -r 8000 -c 1 -b 16 -e signed-integer "$NEW/prompt.wav"
  mv "$NEW/prompt.wav" "$PROMPT"
  printf '%s' "$PROMPT_TEXT" > "$PROMPT.txt"
  say "queue prompt written: $PROMPT ($(soxi -D "$PROMPT" 2>/dev/null || echo '?') s)"
fi

# ---------------------------------------------------------------- 4. start
ari_ok() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' -u "$ARI_USER:$ARI_PASS" "http://127.0.0.1:$HTTP_PORT/ari/asterisk/info")" = 200 ]; }

if PID=$(running_pid); then
  if [ $CHANGED = 1 ]; then
    say "configs changed: restarting Asterisk (pid $PID)"
    chroot "$ROOT" /usr/sbin/asterisk -rx 'core stop now' >/dev/null 2>&1 || kill "$PID" || true
    for _ in $(seq 1 100); do [ -d "/proc/$PID" ] || break; sleep 0.1; done
    if [ -d "/proc/$PID" ]; then kill -9 "$PID" 2>/dev/null || true; sleep 0.2; fi
  else
    say "Asterisk already running (pid $PID) with these configs"
  fi
fi

TS=""
if ! PID=$(running_pid); then
  rm -f "$ROOT/run/asterisk/asterisk.ctl" "$PIDFILE"
  for p in "t:$HTTP_PORT" "t:$AMI_PORT" "u:$SIP_PORT"; do
    if [ -n "$(ss -Hln"${p%%:*}" "sport = :${p##*:}")" ]; then
      ss -Hlnp"${p%%:*}" "sport = :${p##*:}" >&2 || true
      die "port ${p##*:} (${p%%:*}) on this host is already in use"
    fi
  done
  TS=$(date +%s%N)
  # -f: no fork, so the chroot child IS Asterisk; -n: no ANSI colours in the console log;
  # setsid: out of our session, so it outlives this script. The pid is read back from $PIDFILE,
  # because under job control $! is not Asterisk.
  # Only stdin, stdout and stderr go along: any other descriptor of ours (a caller's `flock` lock,
  # a test runner's pipe) would stay open as long as Asterisk runs, holding that lock for good.
  (
    for fd in $(ls "/proc/$BASHPID/fd"); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done
    exec setsid chroot "$ROOT" /usr/sbin/asterisk -f -n < /dev/null >> "$LOG" 2>&1
  ) &
  disown 2>/dev/null || true
fi

for _ in $(seq 1 $((START_TIMEOUT * 10))); do
  ari_ok && break
  sleep 0.1
done
ari_ok || { tail -30 "$LOG" >&2; die "ARI did not answer within ${START_TIMEOUT}s (console log: $LOG, full log: $ROOT/var/log/asterisk/messages.log)"; }
PID=$(running_pid) || die "ARI answers but no Asterisk from $ROOT runs: another Asterisk owns port $HTTP_PORT?"
# ARI answers while later modules are still loading, so wait for the end of the boot. Then make sure the
# key modules run: one that declines to load (pbx_config on a broken #include, say) leaves Asterisk up
# but useless, and every test call would fail with a 404 far from the cause
chroot "$ROOT" /usr/sbin/asterisk -rx 'core waitfullybooted' >/dev/null 2>&1 || true
for m in pbx_config app_queue app_stasis res_ari res_pjsip chan_pjsip res_musiconhold manager; do
  # "manager" is built into the core; the others are .so modules
  out=$(chroot "$ROOT" /usr/sbin/asterisk -rx "module show like $m" 2>/dev/null || true)
  line=$(grep -E "^$m(\.so)? " <<< "$out" || true)
  [[ "$line" == *" Running "* && "$line" != *"Not Running"* ]] && continue
  grep -E "ERROR|WARNING" "$LOG" | tail -15 >&2 || true
  die "module $m is not running: check the configs in $ETC (sources: dialplan/*.conf, docker/asterisk/conf/*.conf)"
done
if [ -n "$TS" ]; then
  say "started pid $PID; ARI ready $(echo "$(( ($(date +%s%N) - TS) / 1000000 ))" | awk '{printf "%.2f", $1 / 1000}') s after start"
fi

cat > "$ASTX_DIR/asterisk.env.tmp" <<EOF
ASTERISK_PID=$PID
ASTERISK_ROOT=$ROOT
ARI_URL=http://127.0.0.1:$HTTP_PORT
ARI_USER=$ARI_USER
ARI_PASS=$ARI_PASS
ARI_APP=$APP
AMI_HOST=127.0.0.1
AMI_PORT=$AMI_PORT
AMI_USER=$AMI_USER
AMI_PASS=$AMI_PASS
SIP_HOST=127.0.0.1
SIP_PORT=$SIP_PORT
ASTERISK_SOUNDS_DIR=$SOUNDS
ASTERISK_LOG=$ROOT/var/log/asterisk/messages.log
ASTERISK_CLI="chroot $ROOT /usr/sbin/asterisk -rx"
EOF
mv "$ASTX_DIR/asterisk.env.tmp" "$ASTX_DIR/asterisk.env"
say "ready in $(elapsed) s total; env written to $ASTX_DIR/asterisk.env"
