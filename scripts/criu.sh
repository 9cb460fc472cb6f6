#!/usr/bin/env bash
# Provides a `criu` that works on this kernel, for the checkpoint/restore tests (issue 15).
#
# Debian bookworm's criu 3.17 fails `criu check` on recent kernels ("Unexpected rt vDSO area
# bounds"). When the criu in $PATH is missing or fails `criu check`, this builds CRIU 4.1.1 from
# Debian's (trixie's) orig tarball, checksum-pinned, into a cache dir and links it into $PATH.
# Only the `criu` binary is built (no docs, crit, plugins or libcriu). One local change: CRIU
# reads /proc/*/mountinfo a line at a time into a 4 KiB buffer, and the line of an overlay
# with many layers is longer (a deep image's container anywhere on the host then breaks every
# dump and `criu check`); the buffer is raised to 256 KiB.
#
# Usage: scripts/criu.sh  (root; idempotent: a second run with a working build is a no-op)
# Env: BERTH_CRIU_CACHE (default /opt/berth-criu), BERTH_CRIU_LINK (default /usr/local/sbin/criu)
set -euo pipefail

version=4.1.1
sha256=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
url="http://deb.debian.org/debian/pool/main/c/criu/criu_${version}.orig.tar.xz"
# Bump the suffix whenever the local change below changes, so old builds are redone.
stamp="${version}+mountinfo-256k"
cache="${BERTH_CRIU_CACHE:-/opt/berth-criu}"
link="${BERTH_CRIU_LINK:-/usr/local/sbin/criu}"
build_deps=(gcc make pkg-config curl xz-utils
  libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler
  libnl-3-dev libnet1-dev libcap-dev libbsd-dev uuid-dev libnftables-dev libgnutls28-dev libaio-dev)

say() { echo "scripts/criu.sh: $*" >&2; }

# criu 3.17 exits 0 even when a kernel check fails: judge by what it says, too.
works() {
  local out
  out=$(timeout 60 "$1" check 2>&1) && ! grep -q 'Error' <<<"$out"
}

link_cached() {
  mkdir -p "$(dirname "$link")"
  ln -sfn "$cache/bin/criu" "$link"
}

if [ -x "$cache/bin/criu" ] && [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ] && works "$cache/bin/criu"; then
  link_cached
  exit 0
fi
if system=$(command -v criu) && works "$system"; then
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
say "criu ${system:+at $system }is missing or fails \`criu check\`: building CRIU $version into $cache"
started=$(date +%s)

missing=()
for pkg in "${build_deps[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing build dependencies: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
tarball="$work/criu_${version}.orig.tar.xz"
curl -fsSL --retry 3 --max-time 300 -o "$tarball" "$url"
echo "$sha256  $tarball" | sha256sum -c --quiet - || {
  say "checksum mismatch for $url"
  exit 1
}
tar -xJf "$tarball" -C "$work"
src="$work/criu-$version"

# The local change (see the header): the mountinfo line buffer, 4 KiB -> 256 KiB.
sed -i 's|^#define BUF_SIZE 4096 .*|#define BUF_SIZE (256 << 10)|' "$src/criu/proc_parse.c"
grep -q '^#define BUF_SIZE (256 << 10)' "$src/criu/proc_parse.c" || {
  say "could not raise CRIU's mountinfo buffer (criu/proc_parse.c changed?)"
  exit 1
}

log="$cache/build.log"
if ! timeout 1200 make -C "$src" -j2 criu </dev/null >"$log" 2>&1; then
  say "building CRIU failed; the end of $log:"
  tail -n 30 "$log" >&2
  exit 1
fi
install -D -m 0755 "$src/criu/criu" "$cache/bin/criu"
echo "$stamp" >"$cache/stamp"
link_cached
if ! works "$cache/bin/criu"; then
  say "the built criu fails \`criu check\` too:"
  timeout 60 "$cache/bin/criu" check >&2 || true
  exit 1
fi
say "CRIU $version built in $(($(date +%s) - started)) s; $link -> $cache/bin/criu"
