#!/usr/bin/env bash
# Installs what NicheTune's native backend needs and nothing else; idempotent and quick when all is present.
#
# libtorch 2.10 (through TorchSharp 0.107) is built against libstdc++ from GCC 13+, i.e. it needs the
# GLIBCXX_3.4.32 symbol version. Debian 12 ships GCC 12's libstdc++ (up to 3.4.30), so every torch call
# fails with DllNotFoundException: LibTorchSharp. On Debian we take libstdc++6 from the next release
# (trixie), pinned at priority 100 so nothing else is pulled from it unless asked for. The trixie source
# is a copy of the machine's own deb822 entry with only the suite changed: no registry host is written
# by this script. We detect the need by the symbol, not the release name (after the upgrade the system
# reports Debian 13).
set -euo pipefail

say() { printf '[prerequisites] %s\n' "$*"; }
fail() { printf '[prerequisites] ERROR: %s\n' "$*" >&2; exit 1; }

NEEDED_SYMBOL=GLIBCXX_3.4.32
SOURCES=/etc/apt/sources.list.d/debian.sources
TRIXIE_SOURCES=/etc/apt/sources.list.d/nichetune-trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/nichetune-trixie

find_libstdcxx() {
  local candidate
  for candidate in \
      "$(ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')" \
      /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /usr/lib64/libstdc++.so.6 /usr/lib/libstdc++.so.6; do
    if [ -n "$candidate" ] && [ -e "$candidate" ]; then printf '%s\n' "$candidate"; return 0; fi
  done
  return 1
}

has_symbol() {
  local lib
  lib=$(find_libstdcxx) || return 1
  # grep -a over the binary works without binutils' `strings`, which a minimal image may lack.
  grep -aq "$NEEDED_SYMBOL" "$lib"
}

if has_symbol; then
  say "libstdc++ provides $NEEDED_SYMBOL: nothing to do."
  exit 0
fi

say "libstdc++ lacks $NEEDED_SYMBOL, which libtorch 2.10 (TorchSharp 0.107) needs."
[ "$(id -u)" = 0 ] || fail "installing libstdc++6 from Debian trixie needs root. Re-run as root: sudo ./eng/install-prerequisites.sh"
[ -r /etc/os-release ] || fail "cannot identify this system (/etc/os-release missing). Install a libstdc++ from GCC 13 or newer by hand."
. /etc/os-release
case "${ID:-}" in
  debian) ;;
  *) fail "automatic setup supports Debian only (this is '${ID:-unknown}'). Install libstdc++ from GCC 13+ (providing $NEEDED_SYMBOL) with your package manager, e.g. Ubuntu 24.04's libstdc++6." ;;
esac
[ -r "$SOURCES" ] || fail "expected the apt source file $SOURCES (deb822 format) to copy the Debian mirror from; it is missing. Install libstdc++6 (GCC 13+) from Debian trixie by hand."

if [ ! -s "$TRIXIE_SOURCES" ]; then
  say "adding Debian trixie as an apt source (pinned at priority 100) from the first entry of $SOURCES"
  # The first deb822 stanza, with its Suites line replaced: keeps URIs, Components and Signed-By as they are.
  awk 'BEGIN{done=0} done==0 && /^[[:space:]]*$/ {if (seen) done=1; next}
       done==0 {seen=1; if ($1=="Suites:") print "Suites: trixie"; else if ($1!~/^#/) print}' \
      "$SOURCES" > "$TRIXIE_SOURCES.tmp"
  grep -q '^Suites: trixie' "$TRIXIE_SOURCES.tmp" || { rm -f "$TRIXIE_SOURCES.tmp"; fail "could not derive a trixie entry from $SOURCES"; }
  mv "$TRIXIE_SOURCES.tmp" "$TRIXIE_SOURCES"
fi
if [ ! -s "$TRIXIE_PIN" ]; then
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > "$TRIXIE_PIN.tmp"
  mv "$TRIXIE_PIN.tmp" "$TRIXIE_PIN"
fi

export DEBIAN_FRONTEND=noninteractive
say "apt-get update"
apt-get update -qq || fail "apt-get update failed; check the machine's apt sources."
say "apt-get install -t trixie libstdc++6 (also upgrades libc6)"
apt-get install -y -qq -o Dpkg::Options::=--force-confold -t trixie libstdc++6 >/dev/null \
  || fail "apt-get install -t trixie libstdc++6 failed."
ldconfig || true

has_symbol || fail "libstdc++6 was installed from trixie but $NEEDED_SYMBOL is still missing."
say "libstdc++ now provides $NEEDED_SYMBOL."
