#!/usr/bin/env bash
# Installs the Debian packages the tests and `make dev` need, when root and missing.
set -euo pipefail
declare -A want=(
  [initdb]=postgresql [pgbench]=pgbench [mariadbd]=mariadb-server [mariadb-install-db]=mariadb-server [mariadb-dump]=mariadb-client
  [sshd]=openssh-server [ssh]=openssh-client [pgbouncer]=pgbouncer [sshpass]=sshpass [openssl]=openssl
  [sysbench]=sysbench [nginx]=nginx [wrk]=wrk [promtool]=prometheus
  [chromium]=chromium
)
have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  # Debian keeps the PostgreSQL server binaries and sshd off PATH.
  compgen -G "/usr/lib/postgresql/*/bin/$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/sbin/$1" ] && return 0
  return 1
}
missing=()
for tool in "${!want[@]}"; do
  have "$tool" || missing+=("${want[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "airlock: missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "airlock: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Installing a server package must not start or enable its system service: the tests
# start their own servers on random ports, and the machine's own services keep theirs.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
fi
trap '[ $created_policy -eq 1 ] && rm -f "$policy"' EXIT
apt-get update -qq >/dev/null || apt-get update
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
