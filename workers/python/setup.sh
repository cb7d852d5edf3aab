#!/usr/bin/env bash
# Make a Python virtualenv with the weft worker library and print its
# interpreter's path. Idempotent and cheap when nothing changed: it
# reinstalls only when requirements.txt changed and regenerates the gRPC
# stubs only when the proto changed. Safe to run concurrently (a lock).
#
#   WEFT_PYTHON_VENV  where the virtualenv goes (default: target/python-venv)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${WEFT_PYTHON_VENV:-$root/target/python-venv}"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/.requirements"; then
  python3 -m venv --clear "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$venv/.requirements"
fi

proto="$root/proto/weft/v1/weft.proto"
gen="$venv/weft-gen"
if [ ! -f "$gen/.stamp" ] || ! cmp -s "$proto" "$gen/.stamp"; then
  rm -rf "$gen" && mkdir -p "$gen"
  "$venv/bin/python" -m grpc_tools.protoc -I "$root/proto" \
    --python_out="$gen" --grpc_python_out="$gen" "$proto" >&2
  cp "$proto" "$gen/.stamp"
fi

# The library and the stubs on the virtualenv's path.
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
printf '%s\n%s\n' "$here" "$gen" > "$site/weft_worker.pth"

echo "$venv/bin/python"
