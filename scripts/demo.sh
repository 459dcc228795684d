#!/bin/sh
# make demo: run the real sync against the bundled GitLab simulator on an
# example prefix, twice, and show what happened. Tokens are redacted.
set -eu
BIN=${BIN:-build}
work=$(mktemp -d)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT INT TERM

umask 077
# A throw-away token for the throw-away GitLab.
printf 'glpat-demo-%s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" > "$work/gitlab.pat"
"$BIN/gitlab-sim" --addr-file "$work/addr" --pat "demo:api:admin:$work/gitlab.pat" --latency 5ms 2>"$work/sim.log" &
sim_pid=$!
i=0
while [ ! -s "$work/addr" ]; do
  i=$((i + 1)); [ $i -gt 100 ] && { echo "demo: the simulator did not start" >&2; cat "$work/sim.log" >&2; exit 1; }
  sleep 0.05
done
url=$(cat "$work/addr")

prefix="$work/etc-gitlab-runner"
mkdir -p "$prefix/main"
cp examples/etc-gitlab-runner/config.template.main.toml "$prefix/"
cp examples/etc-gitlab-runner/main/* "$prefix/main/"
cp "$work/gitlab.pat" "$prefix/gitlab.pat"
sed -i "s#@GITLAB_URL@#$url#" "$prefix/config.template.main.toml" "$prefix/main/"*
chmod 700 "$prefix" "$prefix/main"
chmod 600 "$prefix"/*.toml "$prefix/gitlab.pat" "$prefix/main/"*
export CLUSTER_NAME=demo-cluster

echo "== GitLab simulator at $url; prefix $prefix"
echo
echo "== register-runner --check (first start: plan only, nothing is changed)"
"$BIN/register-runner" --prefix "$prefix" --hostname node12 --check 2>&1
echo
echo "== register-runner (first start: registers both executors)"
"$BIN/register-runner" --prefix "$prefix" --hostname node12 2>&1
echo
echo "== register-runner (restart: keeps everything, one verify per executor)"
"$BIN/gitlab-sim" ctl "$url" POST /-/sim/reset-log >/dev/null
"$BIN/register-runner" --prefix "$prefix" --hostname node12 2>&1
echo "   requests GitLab saw on restart: $("$BIN/gitlab-sim" ctl "$url" GET /-/sim/counts)"
echo
echo "== $prefix/config.main.toml (tokens redacted)"
sed -E 's/^( *token = ")[^"]*"/\1<redacted>"/' "$prefix/config.main.toml"
echo
echo "== runners in GitLab"
"$BIN/gitlab-sim" ctl "$url" GET /-/sim/runners
echo
