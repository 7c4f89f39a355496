#!/usr/bin/env bash
# Builds the Dockerfile's base image from this host's Debian packages, for hosts
# that cannot pull from a registry (air-gapped machines, CI). The image is a
# minimal Debian bookworm with Python 3 and venv, made by debootstrap from the
# host's own apt mirror, and it trusts the host's certificate authorities (a
# TLS-inspecting proxy's CA included), so pip and npm inside builds reach their
# registries. CA certificates are public; nothing secret goes into the image.
#
# Usage (as root, on Debian or Ubuntu with debootstrap installed):
#   docker/build-base-image.sh [IMAGE]        # default IMAGE: sidekick-base:bookworm
# then build with it:
#   SIDEKICK_BASE_IMAGE=sidekick-base:bookworm docker compose build
#
# Environment: DEBIAN_SUITE (default bookworm), DEBIAN_MIRROR and
# DEBIAN_SECURITY_MIRROR (default: the host's apt sources, else deb.debian.org).
set -euo pipefail

image="${1:-sidekick-base:bookworm}"
suite="${DEBIAN_SUITE:-bookworm}"
packages="python3,python3-venv,ca-certificates"
host_bundle=/etc/ssl/certs/ca-certificates.crt
host_local_cas=/usr/local/share/ca-certificates

say() { echo "build-base-image: $*"; }
die() { echo "build-base-image: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "debootstrap needs root"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
command -v docker >/dev/null || die "docker is not installed"

host_site() {
    # The host's mirror for a suite, as apt itself resolved it from its sources.
    apt-get indextargets --format '$(SITE) $(RELEASE)' 'Created-By: Packages' 2>/dev/null |
        awk -v suite="$1" '$2 == suite {print $1; exit}'
}

mirror="${DEBIAN_MIRROR:-$(host_site "$suite")}"
mirror="${mirror:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-$(host_site "$suite-security")}"
security="${security:-http://deb.debian.org/debian-security}"

rootfs="$(mktemp -d "${TMPDIR:-/tmp}/sidekick-base.XXXXXX")"
trap 'rm -rf --one-file-system "$rootfs"' EXIT

say "debootstrap $suite from $mirror into $rootfs"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
    { tail -n 30 "$rootfs.log" >&2; die "debootstrap failed (log: $rootfs.log)"; }
rm -f "$rootfs.log"

cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
EOF

trust_host_cas() {
    # Local CAs go where update-ca-certificates finds them again, so a later
    # ca-certificates upgrade inside an image keeps trusting them.
    if [[ -d "$host_local_cas" ]]; then
        cp -a "$host_local_cas/." "$rootfs/usr/local/share/ca-certificates/"
    fi
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    if [[ -f "$host_bundle" ]] && ! cmp -s "$host_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"; then
        # The host trusts something that is not a local CA file: take its whole bundle.
        cp "$host_bundle" "$rootfs/usr/local/share/ca-certificates/host-bundle.crt"
        chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    fi
}

slim_down() {
    # The same trimming as Debian's official slim images, for later installs too:
    # no docs, man pages or translations, and no .deb files kept after install.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/tmp/*
}

trust_host_cas
slim_down

bundle=/etc/ssl/certs/ca-certificates.crt
say "importing as $image"
tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change "ENV LANG=C.UTF-8" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV PIP_CERT=$bundle REQUESTS_CA_BUNDLE=$bundle SSL_CERT_FILE=$bundle NODE_EXTRA_CA_CERTS=$bundle" \
    --change 'CMD ["bash"]' \
    --message "debootstrap $suite minbase + $packages, trusting the build host's CAs" \
    - "$image" >/dev/null
say "$image: $(docker image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
