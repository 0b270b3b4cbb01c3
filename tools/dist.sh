#!/bin/sh
# `make dist`: the source tarball and the source rock of the version in csrc/core.h, into DIR
# (first argument, default dist/):
#   DIR/awsnet-V.tar.gz       the checkout's source files under awsnet-V/
#   DIR/awsnet-V-1.rockspec   rockspecs/awsnet-V-1.rockspec (its source.url is the tarball's name)
#   DIR/awsnet-V-1.src.rock   `luarocks pack` of the two
# The files are those git tracks plus new ones it does not ignore (git ls-files --cached --others
# --exclude-standard), as they are in the worktree; without git (a copy unpacked from the
# tarball), every file. Never in it, ignored or not: build output (build*/), dist/, and what the
# demo leaves in the checkout (report.md, report.json, topology.svg, snapshot/, *.state.json, the
# demo/ of `awsnet demo --out demo`); the finished tarball is checked for them.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
out=${1:-dist}
case $out in /*) ;; *) out="$root/$out" ;; esac

V=$(sed -n 's/^#define AWSNET_VERSION "\(.*\)"$/\1/p' csrc/core.h)
[ -n "$V" ] || { echo "dist: no AWSNET_VERSION in csrc/core.h" >&2; exit 1; }
rockspec="rockspecs/awsnet-$V-1.rockspec"
grep -Eq "^[[:space:]]*VERSION = \"$V\"" lua/awsnet/init.lua ||
  { echo "dist: lua/awsnet/init.lua does not say VERSION = \"$V\" (csrc/core.h does)" >&2; exit 1; }
[ -f "$rockspec" ] || { echo "dist: no $rockspec for version $V" >&2; exit 1; }

# Paths (relative to the root) that never go in, whatever git says.
EXCLUDE='^(\.git|build[^/]*|dist|snapshot|demo)(/|$)|^(report\.md|report\.json|topology\.svg|[^/]*\.state\.json)$'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files --cached --others --exclude-standard
else
  find . -type f | sed 's|^\./||'
fi | grep -Ev "$EXCLUDE" | sort -u | while IFS= read -r f; do
  # a tracked file deleted in the worktree is gone from the source too
  [ -f "$f" ] && printf '%s\n' "$f"
done > "$tmp/files"
[ -s "$tmp/files" ] || { echo "dist: no files" >&2; exit 1; }

name="awsnet-$V"
mkdir -p "$tmp/$name" "$out"
tar -cf - -T "$tmp/files" | tar -xf - -C "$tmp/$name"
tar -C "$tmp" --sort=name --owner=0 --group=0 --numeric-owner -cf - "$name" | gzip -n -9 > "$out/$name.tar.gz"

# The check: nothing the demo or a build leaves behind went in.
if tar -tzf "$out/$name.tar.gz" | sed "s|^$name/||" | grep -E "$EXCLUDE"; then
  echo "dist: the files above must not be in $name.tar.gz" >&2
  rm -f "$out/$name.tar.gz"
  exit 1
fi

# `luarocks pack` fetches source.url from a folder of its own, where the tarball's bare name finds
# nothing: it packs a copy that names the tarball by its absolute file:// address, and the rockspec
# as kept (source.url: the tarball's name, which is all a build from the src.rock looks at) then
# takes that copy's place in the rock.
cp "$rockspec" "$out/$name-1.rockspec"
mkdir "$tmp/pack"
sed "s|^  url = \"$name.tar.gz\",\$|  url = \"file://$out/$name.tar.gz\",|" "$rockspec" > "$tmp/pack/$name-1.rockspec"
grep -q "file://" "$tmp/pack/$name-1.rockspec" ||
  { echo "dist: $rockspec: source.url is not \"$name.tar.gz\"" >&2; exit 1; }
rm -f "$out/$name-1.src.rock"
(cd "$out" && LUAROCKS_CONFIG="$root/tools/luarocks-config.lua" luarocks --lua-version 5.4 pack "$tmp/pack/$name-1.rockspec")
[ -f "$out/$name-1.src.rock" ] || { echo "dist: luarocks pack made no $name-1.src.rock" >&2; exit 1; }
(cd "$out" && zip -q "$name-1.src.rock" "$name-1.rockspec")
unzip -p "$out/$name-1.src.rock" "$name-1.rockspec" | cmp -s - "$rockspec" ||
  { echo "dist: $name-1.src.rock does not hold $rockspec" >&2; exit 1; }
echo "dist: $out/$name.tar.gz ($(wc -l < "$tmp/files") files), $out/$name-1.src.rock"
