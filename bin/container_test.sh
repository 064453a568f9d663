#!/usr/bin/env bash
# The container leg of `make test` (`make test-container`): builds docker/Dockerfile with
# podman and runs the image for real (tests/test_container.py) against PostgreSQL, then
# runs docker/docker-compose.yml with docker compose and with podman-compose
# (tests/test_compose.py).
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
#
# The compose file needs three things more: a stand-in for its postgres image (Debian's
# PostgreSQL on the same base: tests/container/postgres/), the compose tools (the versions
# pinned in pyproject.toml's `container-test` extra, installed into PYTHON's environment)
# and, for docker compose, a Docker engine: Debian's dockerd, started here on a socket and
# a data root of this leg's own and stopped at the end. Where one of them cannot be had,
# its tests say why and are skipped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}
image=localhost/crontabber:${CONTAINER_TAG:-test} # a tag of this checkout's own (the Makefile's)
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
apt_install() {
    # DPkg::Lock::Timeout: wait for another apt run instead of failing.
    (export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=600 update -q &&
            apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@") >"$work/apt.log" 2>&1
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
    if ! apt_install "${packages[@]}"; then
        skip "podman could not be installed: $(tail -n 1 "$work/apt.log")"
    fi
fi
# For the compose file: netavark and aardvark-dns, podman's networks in which a service
# finds another by its name (podman-compose); docker.io, a Docker engine (docker compose).
# Debian's policy-rc.d, where there is one, keeps apt from starting dockerd's service.
compose_packages=(netavark aardvark-dns docker.io)
compose_skip=""
have_compose_packages() {
    [ -x /usr/lib/podman/netavark ] && [ -x /usr/lib/podman/aardvark-dns ] && command -v dockerd >/dev/null
}
if ! have_compose_packages; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        compose_skip="needs ${compose_packages[*]} (root and apt-get)"
    else
        log "installing ${compose_packages[*]}"
        apt_install "${compose_packages[@]}" || compose_skip="${compose_packages[*]} could not be installed: $(tail -n 1 "$work/apt.log")"
    fi
fi

# This leg's own podman configuration and storage, whatever the machine's defaults are.
# runc, not crun: it runs on cgroups v1 and hybrid hosts. default_ulimits: podman's
# default limits of open files and processes are above the hard limits here, and the
# runtime's setrlimit fails.
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=4096:4096"]

$([ -x /usr/lib/podman/netavark ] && printf '[network]\nnetwork_backend = "netavark"\n')

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

# --- for the compose file ------------------------------------------------------------
# Each step that fails sets compose_skip, which tests/test_compose.py gives as its reason.
compose_tests() {
    # The images under the names docker-compose.yml gives them (crontabber:local and
    # postgres:17), never pulled: this leg's image and the stand-in for PostgreSQL's.
    compose_images=$("$python" -c 'import sys, yaml; s = yaml.safe_load(open(sys.argv[1]))["services"]; print(s["migrate"]["image"], s["postgres"]["image"])' docker/docker-compose.yml)
    read -r app_name pg_name <<<"$compose_images"
    local recipe pg_key
    recipe=tests/container/postgres
    pg_key=$(cat "$recipe"/* <(echo "$base") | sha256sum | cut -c1-12)
    postgres=localhost/crontabber-postgres:$pg_key
    if ! podman image exists "$postgres"; then
        log "making the stand-in for $pg_name (Debian's PostgreSQL on the base)"
        if ! podman build --quiet --format docker --pull=never --network=host --build-arg "BASE=$base" \
            -f "$recipe/Containerfile" -t "$postgres" "$recipe" >"$work/postgres-build.log" 2>&1; then
            compose_skip="the stand-in PostgreSQL image could not be built: $(tail -n 1 "$work/postgres-build.log")"
            return
        fi
    fi
    podman tag "$postgres" "docker.io/library/$pg_name"
    podman tag "$image" "localhost/$app_name"

    # The compose tools, at the versions pinned in pyproject.toml.
    local tools
    mapfile -t tools < <("$python" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["container-test"]))')
    if ! "$python" -m pip install --quiet --disable-pip-version-check "${tools[@]}" >"$work/pip.log" 2>&1; then
        compose_skip="${tools[*]} could not be installed: $(tail -n 1 "$work/pip.log")"
        return
    fi
    log "podman-compose $("$python" -c 'import importlib.metadata as m; print(m.version("podman-compose"))') on podman $(podman version --format '{{.Client.Version}}')"

    # docker compose: the Compose binary as the docker CLI's plugin, in a configuration of
    # this leg's own; the engine, Debian's dockerd, on this leg's socket and data root. No
    # iptables rules and no IP forwarding: the services reach one another on their bridge
    # network, the published port goes through docker-proxy, nothing goes outside.
    DOCKER_CONFIG=$(realpath "$work")/docker-config
    mkdir -p "$DOCKER_CONFIG/cli-plugins"
    [ -e "$DOCKER_CONFIG/config.json" ] || echo '{}' >"$DOCKER_CONFIG/config.json" # podman reads it too
    ln -sf "$("$python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).with_name("docker-compose"))')" \
        "$DOCKER_CONFIG/cli-plugins/docker-compose"
    export DOCKER_CONFIG
    if ! command -v docker >/dev/null; then
        docker_skip="no docker command (the docker.io package has one)"
        return
    fi
    if ! docker compose version >"$work/compose-version.log" 2>&1; then
        docker_skip="docker compose does not run here: $(tail -n 1 "$work/compose-version.log")"
        return
    fi
    local run=/run/crontabber-container/docker
    mkdir -p "$run"
    exec {docker_lock}>"$cache/dockerd.lock"
    if ! flock --nonblock "$docker_lock"; then
        docker_skip="another container leg is using its dockerd ($cache/dockerd.lock)"
        return
    fi
    dockerd --data-root "$cache/docker" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
        --host "unix://$run/docker.sock" --containerd-namespace crontabber-test \
        --containerd-plugins-namespace crontabber-test-plugins \
        --iptables=false --ip-forward=false --bridge=none >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    export DOCKER_HOST=unix://$run/docker.sock
    local tries=0
    until docker version >/dev/null 2>&1; do
        if ! kill -0 "$dockerd_pid" 2>/dev/null || [ $((tries += 1)) -gt 60 ]; then
            docker_skip="dockerd did not start: $(tail -n 1 "$work/dockerd.log")"
            return
        fi
        sleep 0.5
    done
    # The two images, loaded into dockerd unless it has them already (the same image ID).
    local name source
    for name in "$app_name" "$pg_name"; do
        source=$([ "$name" = "$app_name" ] && echo "$image" || echo "$postgres")
        if [ "$(docker image inspect --format '{{.Id}}' "$name" 2>/dev/null)" != \
            "$(podman image inspect --format 'sha256:{{.Id}}' "$source")" ]; then
            log "loading $name into dockerd"
            if ! podman save --format docker-archive "$source" | docker load --quiet >/dev/null 2>"$work/docker-load.log" ||
                ! docker tag "$(podman image inspect --format 'sha256:{{.Id}}' "$source")" "$name"; then
                docker_skip="$name could not be loaded into dockerd: $(tail -n 1 "$work/docker-load.log")"
                return
            fi
        fi
    done
    docker image prune --force >/dev/null # the images these names had before
    log "docker compose $(docker compose version --short) on dockerd $(docker version --format '{{.Server.Version}}')"
}
# shellcheck disable=SC2329  # invoked by the trap below
stop_dockerd() {
    if [ -n "${dockerd_pid:-}" ]; then
        kill -TERM "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
    fi
}
dockerd_pid=""
docker_skip=""
trap stop_dockerd EXIT
if [ -z "$compose_skip" ]; then
    started=$(date +%s)
    # The compose file names its images (crontabber:local): one checkout's leg at a time
    # tags and runs them; another waits here until this one is done.
    exec {compose_lock}>"$cache/compose.lock"
    flock "$compose_lock"
    compose_tests
    log "compose: ready in $(($(date +%s) - started)) s${compose_skip:+ (skipped: $compose_skip)}${docker_skip:+ (docker compose skipped: $docker_skip)}"
fi

status=0
rm -f "$work/compose-times.txt"
CONTAINER_IMAGE=$image COMPOSE_SKIP=$compose_skip DOCKER_SKIP=$docker_skip \
    "$python" -m pytest tests/test_container.py tests/test_compose.py "$@" || status=$?
if [ -s "$work/compose-times.txt" ]; then
    sed 's/^/container leg: compose times: /' "$work/compose-times.txt" >&2
fi
log "done in ${SECONDS} s"
exit "$status"
