#!/bin/sh
# Installs the Debian packages awsnet needs to build, test, benchmark and run its demo.
# Runs apt-get only when something is missing; says what to do when not root.
set -eu
PKGS="make gcc pkg-config lua5.4 liblua5.4-dev lua-cjson luarocks lua-busted lua-check
libcurl4-openssl-dev libssl-dev openssl ca-certificates libmariadb-dev libexpat1-dev libc-ares-dev
mariadb-server mariadb-client dnsmasq-base dnsutils python3 python3-botocore python3-boto3 python3-pymysql awscli
lua-sql-mysql lua-socket graphviz zip procps valgrind lua-argparse lua-ldoc iproute2 nftables iputils-ping"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "awsnet: missing Debian packages:$missing" >&2
  echo "awsnet: run as root, or: sudo apt-get install$missing" >&2
  exit 1
fi
echo "awsnet: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Services are started by the tests themselves; keep the package scripts from starting them.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.awsnet
if [ ! -e /usr/sbin/policy-rc.d ]; then cp /usr/sbin/policy-rc.d.awsnet /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi
rm -f /usr/sbin/policy-rc.d.awsnet
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
