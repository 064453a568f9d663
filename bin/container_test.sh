#!/usr/bin/env bash
# The container leg of `make test` (`make test-container`): builds docker/Dockerfile with
# podman and runs the image for real (tests/test_container.py) against PostgreSQL.
#
#   DATABASE_URL  the PostgreSQL database the containers use; dropped and made afresh
#   PYTHON        the interpreter that runs pytest (the project's virtualenv)
#   arguments     passed to pytest
#
# No image registry is reached: the base, a stand-in for python:3.11-slim (Debian bookworm
# with Python 3.11 and this host's certificate authorities), is made with debootstrap and
# kept, with podman's storage and layer cache, under ~/.cache/crontabber-container, keyed
# by its recipe. Where podman cannot be installed or run, the leg says why in one line
# and is skipped (exit status 0).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}
image=localhost/crontabber:test
cache=${XDG_CACHE_HOME:-$HOME/.cache}/crontabber-container
work=var/container
mkdir -p "$work" "$cache"

skip() {
    echo "container leg skipped: $*" >&2
    exit 0
}
log() {
    printf 'container leg: %s\n' "$*" >&2
}

# --- podman, from Debian's packages -------------------------------------------------
# catatonit: podman's --init.
packages=(podman runc catatonit debootstrap)
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v catatonit >/dev/null ||
    ! command -v debootstrap >/dev/null; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        skip "podman is not installed and cannot be here (needs root and apt-get: apt-get install ${packages[*]})"
    fi
    log "installing ${packages[*]}"
    # DPkg::Lock::Timeout: wait for another apt run instead of failing.
    if ! (export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=600 update -q &&
            apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${packages[@]}") \
        >"$work/apt.log" 2>&1; then
        skip "podman could not be installed: $(tail -n 1 "$work/apt.log")"
    fi
fi

# This leg's own podman configuration and storage, whatever the machine's defaults are.
# runc, not crun: it runs on cgroups v1 and hybrid hosts. default_ulimits: podman's
# default limits of open files and processes are above the hard limits here, and the
# runtime's setrlimit fails.
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "/run/crontabber-container/libpod"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$cache/storage"
runroot = "/run/crontabber-container/storage"
EOF
CONTAINERS_CONF=$(realpath "$work/containers.conf")
CONTAINERS_STORAGE_CONF=$(realpath "$work/storage.conf")
export CONTAINERS_CONF CONTAINERS_STORAGE_CONF
if ! podman info >"$work/podman-info.log" 2>&1; then
    skip "podman cannot run here: $(tail -n 1 "$work/podman-info.log")"
fi

# --- the base: a stand-in for python:3.11-slim ---------------------------------------
# The recipe; any change to it (or to the host's certificate authorities) makes a new base.
suite=bookworm
mirror=http://deb.debian.org/debian
include=python3.11,python3.11-venv,python3-distutils,python-is-python3,ca-certificates
cafile=/etc/ssl/certs/ca-certificates.crt
key=$( (echo "$suite $mirror $include" && sed -n '/^# --- the base/,/^# --- the image/p' "$0" && cat "$cafile") |
    sha256sum | cut -c1-12)
base=localhost/crontabber-base:$key
if ! podman image exists "$base"; then
    log "making the base image with debootstrap ($suite, $include)"
    rootfs=$work/rootfs
    rm -rf "$rootfs"
    if ! debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
        skip "debootstrap could not make the base image: $(tail -n 1 "$work/debootstrap.log")"
    fi
    # What python:3.11-slim leaves out, and this host's certificate authorities, so that
    # pip inside the build trusts what the host trusts.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
        "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/var/log/* "$rootfs"/debootstrap
    cp "$cafile" "$rootfs$cafile"
    tar -C "$rootfs" -c . | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change "ENV PIP_CERT=$cafile" \
        --change 'CMD ["python3"]' \
        - "$base" >/dev/null
    rm -rf "$rootfs"
fi
# The Dockerfile's FROM, resolved to the stand-in and never pulled.
podman tag "$base" docker.io/library/python:3.11-slim
if ! podman run --rm --network=host "$base" true 2>"$work/podman-run.log"; then
    skip "podman cannot run a container here: $(tail -n 1 "$work/podman-run.log")"
fi

# --- the image -----------------------------------------------------------------------
log "building docker/Dockerfile"
started=$(date +%s)
# --format docker: OCI images have no HEALTHCHECK. --network host: pip reaches PyPI as the
# host does.
podman build --quiet --format docker --pull=never --network=host \
    --ignorefile docker/Dockerfile.dockerignore -f docker/Dockerfile -t "$image" . >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
log "built $image in $(($(date +%s) - started)) s: $((size / 1000000)) MB"

status=0
CONTAINER_IMAGE=$image "$python" -m pytest tests/test_container.py "$@" || status=$?
log "done in ${SECONDS} s"
exit "$status"
