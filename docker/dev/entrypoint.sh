#!/bin/sh
# The dev image's entrypoint: run the command (tmux by default) as whoever owns
# the checkout mounted at /workspace, so it is writable whether the host's
# checkout belongs to root, to UID 1000 or to anyone else. The home directory
# (a volume) is given to that user, and the venv's group (its files are group
# writable) added, so `pip install` works inside. A checkout owned by root keeps
# the session root.
set -eu

workspace=/workspace
home=/home/dev
uid="$(stat -c %u "$workspace")"
gid="$(stat -c %g "$workspace")"

if [ "$(id -u)" != 0 ] || [ "$uid" = 0 ]; then
    exec "$@"
fi

getent group "$gid" >/dev/null || groupadd --gid "$gid" "dev$gid"
getent passwd "$uid" >/dev/null \
    || useradd --uid "$uid" --gid "$gid" --home-dir "$home" --no-create-home --shell /bin/bash "dev$uid"
if [ "$(stat -c %u:%g "$home")" != "$uid:$gid" ]; then
    chown -R "$uid:$gid" "$home"
fi
venv_group="$(stat -c %g "${VIRTUAL_ENV:-/opt/sidekick}")"

USER="$(getent passwd "$uid" | cut -d: -f1)"
export HOME="$home" USER
exec setpriv --reuid "$uid" --regid "$gid" --groups "$venv_group" "$@"
