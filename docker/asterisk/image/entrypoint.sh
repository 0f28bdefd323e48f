#!/bin/sh
# Writes the configs that carry credentials or addresses from the environment, then becomes Asterisk
# (exec: Asterisk is PID 1 and gets the engine's SIGTERM itself).
#   ARI_USER=call-actions  ARI_PASSWORD (required)      the service's ARI user
#   AMI_USER=call-actions  AMI_SECRET (required)        the service's AMI user
#   SOFTPHONE_USER=softphone  SOFTPHONE_PASSWORD        a SIP account for a softphone (none when unset)
#   EXTERNAL_ADDRESS=127.0.0.1  EXTERNAL_SIP_PORT=5060  where SIP phones reach this PBX (the host side
#                                                       of the published ports); named in SIP and SDP
set -eu
: "${ARI_USER:=call-actions}" "${AMI_USER:=call-actions}" "${SOFTPHONE_USER:=softphone}"
: "${EXTERNAL_ADDRESS:=127.0.0.1}" "${EXTERNAL_SIP_PORT:=5060}"
[ -n "${ARI_PASSWORD:-}" ] || { echo "asterisk-entrypoint: ARI_PASSWORD is required" >&2; exit 2; }
[ -n "${AMI_SECRET:-}" ] || { echo "asterisk-entrypoint: AMI_SECRET is required" >&2; exit 2; }
umask 077
ETC=/etc/asterisk

cat > $ETC/ari.conf <<CONF
[general]
enabled = yes
pretty = no

[$ARI_USER]
type = user
read_only = no
password = $ARI_PASSWORD
password_format = plain
CONF

# AMI is reached from the service's container, whose address the compose network picks
cat > $ETC/manager.conf <<CONF
[general]
enabled = yes
port = 5038
bindaddr = 0.0.0.0

[$AMI_USER]
secret = $AMI_SECRET
deny = 0.0.0.0/0.0.0.0
permit = 10.0.0.0/255.0.0.0
permit = 172.16.0.0/255.240.0.0
permit = 192.168.0.0/255.255.0.0
permit = 127.0.0.1/255.255.255.255
read = all
write = all
CONF

# No local_net: every peer is treated as outside, so SIP and SDP always name the published
# address and ports (a caller on the host sends its RTP to them), and replies go where requests
# came from (force_rport, rewrite_contact, rtp_symmetric) through the engine's port mapping.
cat > $ETC/pjsip.conf <<CONF
[global]
type = global
; a softphone is picked by its user name; any other caller through the published port is "caller"
endpoint_identifier_order = username,auth_username,ip
user_agent = call-actions-demo-pbx

[transport-udp]
type = transport
protocol = udp
bind = 0.0.0.0:5060
external_signaling_address = $EXTERNAL_ADDRESS
external_signaling_port = $EXTERNAL_SIP_PORT
external_media_address = $EXTERNAL_ADDRESS

[endpoint-common](!)
type = endpoint
transport = transport-udp
context = from-test
disallow = all
allow = ulaw,alaw
direct_media = no
force_rport = yes
rewrite_contact = yes
rtp_symmetric = yes
dtmf_mode = rfc4733

; unauthenticated callers, as the test PBX has them: the SIP port is published on the host's
; loopback only, where the engine's port mapping makes them come from a private address
[caller](endpoint-common)

[caller]
type = identify
endpoint = caller
match = 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.1

; the queue's member, never reachable here: the queue keeps its callers waiting
[agent](endpoint-common)
aors = agent

[agent]
type = aor
max_contacts = 1
contact = sip:agent@127.0.0.1:5080
qualify_frequency = 60
CONF

if [ -n "${SOFTPHONE_PASSWORD:-}" ]; then
  cat >> $ETC/pjsip.conf <<CONF

[$SOFTPHONE_USER](endpoint-common)
auth = $SOFTPHONE_USER
aors = $SOFTPHONE_USER

[$SOFTPHONE_USER]
type = auth
auth_type = userpass
username = $SOFTPHONE_USER
password = $SOFTPHONE_PASSWORD

[$SOFTPHONE_USER]
type = aor
max_contacts = 1
remove_existing = yes
CONF
fi

# -f: stay in the foreground as PID 1; -n: no colours in the log
exec /usr/sbin/asterisk -f -n "$@"
