#!/usr/bin/env bash
# Checks for, and installs, what ctrain needs to build on Debian/Ubuntu.
#   scripts/deps.sh --check    exit 0 when everything is present, 1 (listing what is missing) otherwise
#   scripts/deps.sh --install  install what is missing with apt-get (through sudo when not root)
set -u
PACKAGES="build-essential pkg-config libcjson-dev libzstd-dev libhdf5-dev libopenblas-dev libopenmpi-dev openmpi-bin hdf5-tools cmake"

missing() {
    local m=""
    command -v cc >/dev/null 2>&1 || m="$m build-essential"
    command -v make >/dev/null 2>&1 || m="$m build-essential"
    if ! command -v pkg-config >/dev/null 2>&1; then
        echo "pkg-config"; return
    fi
    pkg-config --exists libcjson || m="$m libcjson-dev"
    pkg-config --exists libzstd || m="$m libzstd-dev"
    pkg-config --exists hdf5 || m="$m libhdf5-dev"
    pkg-config --exists openblas || m="$m libopenblas-dev"
    command -v mpicc >/dev/null 2>&1 || m="$m libopenmpi-dev"
    command -v mpirun >/dev/null 2>&1 || m="$m openmpi-bin"
    command -v h5dump >/dev/null 2>&1 || m="$m hdf5-tools"
    # cmake: make test-long and make test-ref build llama.cpp (the real GGUF client) from source
    command -v cmake >/dev/null 2>&1 || m="$m cmake"
    echo "$m"
}

case "${1:---check}" in
--check)
    m=$(missing)
    if [ -n "${m// /}" ]; then echo "missing:$m"; exit 1; fi
    exit 0 ;;
--install)
    m=$(missing)
    if [ -z "${m// /}" ]; then echo "deps: everything ctrain needs is installed"; exit 0; fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "deps: missing:$m; this is not a Debian/Ubuntu machine, install the equivalents of: $PACKAGES" >&2
        exit 1
    fi
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
            echo "deps: missing:$m; run as root or install sudo, then: apt-get install $PACKAGES" >&2; exit 1
        fi
    fi
    echo "deps: installing$m (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq || { echo "deps: apt-get update failed" >&2; exit 1; }
    $SUDO apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null || {
        echo "deps: apt-get install failed; try by hand: apt-get install $PACKAGES" >&2; exit 1; }
    m=$(missing)
    if [ -n "${m// /}" ]; then echo "deps: still missing after install:$m" >&2; exit 1; fi
    echo "deps: done" ;;
*)
    echo "usage: scripts/deps.sh --check | --install" >&2; exit 2 ;;
esac
