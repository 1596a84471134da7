#!/usr/bin/env bash
# How long a newcomer waits: clones this checkout's HEAD (what is committed) into a temporary folder, runs
# `make run` there and times it until GET /health answers 200; then stops it (as Ctrl-C would) and removes
# the clone. The figure in the README's "Run it locally" section comes from this script.
#   scripts/first-start.sh              pip's download cache as this machine has it
#   scripts/first-start.sh --no-cache   pip downloads every package (a machine that never installed them)
# Prints one line per phase and the total; exits 1 when /health did not answer within 300 s.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "--no-cache" ]; then
  export PIP_NO_CACHE_DIR=1
  cache="no pip cache"
else
  cache="pip cache as it is"
fi
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

started="$(now)"
git clone --quiet --no-hardlinks "$root" "$work/clone"
cloned="$(now)"
echo "clone: $(seconds "$started" "$cloned") s ($work/clone, HEAD $(git -C "$root" rev-parse --short HEAD))"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Its own process group (setsid), so the stop reaches make and the server it started.
setsid make -C "$work/clone" run PORT="$port" >"$work/make-run.log" 2>&1 &
pid=$!
answered=""
while [ -z "$answered" ]; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "make run exited before answering:" >&2
    cat "$work/make-run.log" >&2
    exit 1
  fi
  if [ "$(seconds "$cloned" "$(now)" | cut -d. -f1)" -ge 300 ]; then
    echo "no answer from /health within 300 s" >&2
    exit 1
  fi
  if curl -sf -o /dev/null "http://127.0.0.1:$port/health"; then
    answered="$(now)"
  else
    sleep 0.2
  fi
done
echo "make run -> /health 200: $(seconds "$cloned" "$answered") s ($cache)"
echo "what it printed:"
sed 's/^/  | /' "$work/make-run.log" | grep -v '"message"' | head -20
