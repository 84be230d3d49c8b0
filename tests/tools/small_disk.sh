#!/bin/sh
# Runs a shell script with a small, full-able disk mounted at a folder: the way the fault tests
# make "disk full" real for every kind of write (HDF5, stdio, write(2)) without a write shim.
#
#   tests/tools/small_disk.sh SIZE DIR 'SCRIPT'
#
# DIR (created if missing) becomes a fresh tmpfs of SIZE (e.g. 2m, 512k) in a private mount
# namespace, so the mount vanishes when SCRIPT ends and nothing outside sees it; SCRIPT runs
# through /bin/sh with DIR as its working directory and its exit status is returned. Whatever
# must be checked on that disk is checked inside SCRIPT. Exit status 77 means this machine
# cannot mount one (no root and no user namespaces): the caller skips with a message.
set -eu
if [ $# -ne 3 ]; then
    echo "usage: $0 SIZE DIR 'SCRIPT'" >&2
    exit 2
fi
size=$1 dir=$2 script=$3
mkdir -p "$dir"
inner='mount -t tmpfs -o size="$1" ctrain-small-disk "$2" || exit 77; cd "$2" && exec /bin/sh -c "$3"'
if [ "$(id -u)" = 0 ] && unshare -m --propagation private true 2>/dev/null; then
    exec unshare -m --propagation private /bin/sh -c "$inner" small_disk "$size" "$dir" "$script"
fi
if unshare -rm --propagation private true 2>/dev/null; then
    exec unshare -rm --propagation private /bin/sh -c "$inner" small_disk "$size" "$dir" "$script"
fi
echo "small_disk: cannot mount a tmpfs here (needs root or user namespaces)" >&2
exit 77
