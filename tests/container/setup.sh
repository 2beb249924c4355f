#!/usr/bin/env bash
# Make `buildah build` and `podman run` work on a machine with no Docker engine and no Docker Hub
# (see shared/FACTS.md section 6): install podman, buildah, runc and debootstrap; write a
# containers.conf that works without systemd; and build a Debian bookworm base image with python3,
# `localhost/base:bookworm`, a stand-in for the Dockerfile's pinned python image: the test builds
# with `--build-arg BASE_IMAGE=localhost/base:bookworm`. Idempotent: each step is skipped when done.
# Prints the base image's name.
set -euo pipefail

base_tag=localhost/base:bookworm

if ! command -v buildah >/dev/null || ! command -v podman >/dev/null \
    || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq podman buildah runc debootstrap >/dev/null
fi

conf=/etc/containers/containers.conf
if ! grep -q 'runtime = "runc"' "$conf" 2>/dev/null; then
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    [ "$nofile" = unlimited ] && nofile=65536
    { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
    mkdir -p /etc/containers
    cat >"$conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
fi

if ! podman image exists "$base_tag"; then
    # The mirror this machine's apt already uses: no host name is written here.
    mirror=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 | awk '{print $2}')
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
        bookworm "$rootfs" "$mirror" >/dev/null
    # Outbound HTTPS on these machines passes a re-signing proxy: trust its CA inside too.
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    fi
    # As in the official python image, pip installs system-wide.
    rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import -q - "$base_tag" >/dev/null
fi
echo "$base_tag"
