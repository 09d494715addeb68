#!/bin/sh
# Mosquitto for docker-compose.yml, told to read its password file again whenever the
# tracker rewrites it (`tracker devices add|rotate|remove` in a worker's container, the
# bridge's own user when it starts): the containers share the file, not their processes, so
# no one else can send the broker a SIGHUP.
set -eu
PASSWORDS=/passwords/passwd
# The tracker's containers run as uid 10001 and replace the file whole: the folder is theirs.
chown 10001 /passwords
if [ ! -f "$PASSWORDS" ]; then
  touch "$PASSWORDS"
  chown 10001 "$PASSWORDS"
  chmod 644 "$PASSWORDS"
fi
mosquitto -c /mosquitto/config/mosquitto.conf &
broker=$!
trap 'kill -TERM "$broker"; wait "$broker"; exit 0' TERM INT
seen=$(cksum < "$PASSWORDS")
while kill -0 "$broker" 2>/dev/null; do
  sleep 2
  now=$(cksum < "$PASSWORDS" 2>/dev/null || true)
  if [ "$now" != "$seen" ]; then
    seen=$now
    kill -HUP "$broker"
  fi
done
wait "$broker"
