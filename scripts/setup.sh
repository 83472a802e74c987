#!/usr/bin/env bash
# Install what tutti needs on Debian 12 (as root), then configure and build it.
#   scripts/setup.sh BUILD_DIR [configure options...]
# Idempotent: packages already present are skipped, an existing build is updated.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: setup.sh BUILD_DIR [configure options...]}
shift

packages=(build-essential autoconf automake libtool pkg-config check
          libhwloc-dev libucx-dev libibverbs-dev iproute2 ${TUTTI_EXTRA_PACKAGES:-})
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cd "$top"
mkdir -p m4
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
    echo "== autoreconf"
    autoreconf -fi
fi
mkdir -p "$build"
cd "$build"
# Reconfigure when the options change.
if [ ! -f Makefile ] || [ "$(cat .configure-args 2>/dev/null)" != "$*" ]; then
    echo "== configure $*"
    "$top/configure" "$@"
    echo "$*" > .configure-args
fi
echo "== build in $build"
make -j"$(nproc)"
