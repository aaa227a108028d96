#!/usr/bin/env bash
# Starts or stops a private Dovecot (IMAP over implicit TLS, submission with STARTTLS, LMTP) for
# Mailroom's tests. It never touches /etc/dovecot: config, TLS material, sockets and mail all live
# under $MAILROOM_TEST_STATE/dovecot. Usage: tests/servers/dovecot.sh start|stop
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${MAILROOM_TEST_STATE:-$REPO/tests/.state}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
DIR="$STATE/dovecot"
ENV_FILE="$STATE/env"
PID_FILE="$DIR/dovecot.pid"

log() { echo "dovecot.sh: $*" >&2; }

# Removes this server's lines from the shared env file, keeping the other servers' ones.
env_remove() {
  [ -f "$ENV_FILE" ] || return 0
  local tmp
  tmp="$(mktemp "$STATE/env.XXXXXX")"
  grep -v -E '^export MAILROOM_TEST_(IMAP_PORT|IMAP_STARTTLS_PORT|SMTP_PORT|LMTP_PORT|CA|DOVECOT_DIR)=' "$ENV_FILE" >"$tmp" || true
  mv "$tmp" "$ENV_FILE"
}

install_packages() {
  local missing=()
  command -v dovecot >/dev/null 2>&1 || missing+=(dovecot-core)
  [ -x /usr/lib/dovecot/imap ] || missing+=(dovecot-imapd)
  [ -x /usr/lib/dovecot/submission ] || missing+=(dovecot-submissiond)
  [ -x /usr/lib/dovecot/lmtp ] || missing+=(dovecot-lmtpd)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The packages' own service must not start: only our private instance runs.
    local policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      policy=/usr/sbin/policy-rc.d
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ -n "$policy" ]; then rm -f "$policy"; fi
  fi
}

# A free TCP port on 127.0.0.1 (nothing answers on it), avoiding ports already picked in this run.
PICKED=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( (RANDOM % 30000) + 20000 ))
    case "$PICKED" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      PICKED="$PICKED$p "
      echo "$p"
      return 0
    fi
  done
  log "no free port found"
  return 1
}

# A test CA and a server certificate for localhost/127.0.0.1, made once per state dir.
make_tls() {
  local tls="$DIR/tls"
  [ -s "$tls/server.crt" ] && [ -s "$tls/ca.crt" ] && return 0
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Mailroom Test CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$tls/server.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 3650 -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
  chmod 600 "$tls/ca.key" "$tls/server.key"
}

is_running() {
  [ -s "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

wait_port() {
  local port="$1"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "nothing listens on port $port; see $DIR/dovecot.log"
  return 1
}

start() {
  : "${MAILROOM_TEST_OAUTH_URL:?MAILROOM_TEST_OAUTH_URL must be set (start tests/servers/oauth.sh first)}"
  # A previous instance may point at an older OAuth server: always start afresh.
  stop >/dev/null 2>&1 || true
  install_packages
  mkdir -p "$DIR"/{run,lib,mail}
  # The unprivileged mail user must be able to reach the mail directory whatever the umask.
  chmod o+x "$STATE" "$DIR"
  make_tls

  local mail_user=nobody mail_group
  mail_group="$(id -gn "$mail_user")"
  chown "$mail_user:$mail_group" "$DIR/mail"
  if ! su -s /bin/sh "$mail_user" -c "test -w '$DIR/mail'" 2>/dev/null; then
    log "$mail_user cannot write $DIR/mail (a parent directory is not searchable); set MAILROOM_TEST_STATE elsewhere"
    return 1
  fi

  local imap_port imap_starttls_port smtp_port lmtp_port relay_port
  imap_port="$(free_port)"; imap_starttls_port="$(free_port)"; smtp_port="$(free_port)"
  lmtp_port="$(free_port)"; relay_port="$(free_port)"
  local subst=(
    -e "s|@DIR@|$DIR|g" -e "s|@OAUTH_URL@|${MAILROOM_TEST_OAUTH_URL%/}|g"
    -e "s|@IMAP_PORT@|$imap_port|g" -e "s|@IMAP_STARTTLS_PORT@|$imap_starttls_port|g"
    -e "s|@SMTP_PORT@|$smtp_port|g"
    -e "s|@LMTP_PORT@|$lmtp_port|g" -e "s|@RELAY_PORT@|$relay_port|g"
    -e "s|@PORT_TAG@|$imap_port|g"
    -e "s|@MAIL_USER@|$mail_user|g" -e "s|@MAIL_GROUP@|$mail_group|g"
  )
  sed "${subst[@]}" "$HERE/dovecot/dovecot.conf.in" >"$DIR/dovecot.conf"
  sed "${subst[@]}" "$HERE/dovecot/dovecot-oauth2.conf.ext.in" >"$DIR/dovecot-oauth2.conf.ext"
  : >"$DIR/dovecot.log"

  # A stale pid file from a killed instance must not be mistaken for the new master's.
  rm -f "$DIR/run/master.pid"
  dovecot -c "$DIR/dovecot.conf"
  # The master writes its pid under base_dir.
  for _ in $(seq 1 50); do [ -s "$DIR/run/master.pid" ] && break; sleep 0.1; done
  if [ ! -s "$DIR/run/master.pid" ]; then
    log "dovecot did not start; see $DIR/dovecot.log"
    cat "$DIR/dovecot.log" >&2 || true
    return 1
  fi
  cp "$DIR/run/master.pid" "$PID_FILE"

  # Submission relays over SMTP, which Dovecot's LMTP does not speak: a small bridge translates.
  nohup python3 "$HERE/dovecot/smtp_to_lmtp.py" "$relay_port" "$lmtp_port" \
    </dev/null >>"$DIR/relay.log" 2>&1 &
  echo $! >"$DIR/relay.pid"

  wait_port "$imap_port"; wait_port "$imap_starttls_port"; wait_port "$smtp_port"; wait_port "$lmtp_port"; wait_port "$relay_port"

  env_remove
  {
    echo "export MAILROOM_TEST_IMAP_PORT=$imap_port"
    echo "export MAILROOM_TEST_IMAP_STARTTLS_PORT=$imap_starttls_port"
    echo "export MAILROOM_TEST_SMTP_PORT=$smtp_port"
    echo "export MAILROOM_TEST_LMTP_PORT=$lmtp_port"
    echo "export MAILROOM_TEST_CA=$DIR/tls/ca.crt"
    echo "export MAILROOM_TEST_DOVECOT_DIR=$DIR"
  } >>"$ENV_FILE"
  log "started (pid $(cat "$PID_FILE")): imaps $imap_port, imap+starttls $imap_starttls_port, submission $smtp_port, lmtp $lmtp_port"
}

stop_pid_file() {
  local file="$1" pid
  [ -s "$file" ] || return 0
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop() {
  stop_pid_file "$DIR/relay.pid"
  stop_pid_file "$PID_FILE"
  env_remove
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
