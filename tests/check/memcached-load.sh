#!/bin/bash
# memcached-load.sh WEFT: memcached (4 worker threads) under `weft check`,
# driven by 4 concurrent loopback clients doing a bounded number of set/get
# round trips each, every reply checked. Then memcached is stopped; nothing
# may be reported. Skips (77) when memcached is not installed.
set -u
weft=$1
command -v memcached >/dev/null || exit 77
tmp=$(mktemp -d) || exit 2
port=$((20000 + RANDOM % 20000))
"$weft" check --output "$tmp/reports" -- memcached -t 4 -p $port -U 0 -l 127.0.0.1 -u root -m 64 &
wpid=$!
cleanup() { kill "$wpid" 2>/dev/null; pkill -TERM -P "$wpid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
for i in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
done
client() {
    local id=$1 n=$2 ok=0
    exec 3<>/dev/tcp/127.0.0.1/$port || return 1
    for ((k = 0; k < n; k++)); do
        local v="v-$id-$k"
        printf 'set key%d-%d 0 0 %d\r\n%s\r\n' "$id" "$k" "${#v}" "$v" >&3
        read -r line <&3; [ "${line%$'\r'}" = STORED ] || { echo "client $id: set got '$line'"; return 1; }
        printf 'get key%d-%d\r\n' "$id" "$k" >&3
        read -r line <&3; read -r data <&3; read -r end <&3
        [ "${data%$'\r'}" = "$v" ] || { echo "client $id: get got '$data'"; return 1; }
        ok=$((ok + 1))
    done
    printf 'quit\r\n' >&3
    [ $ok -eq "$n" ]
}
pids=()
for id in 1 2 3 4; do client $id 500 & pids+=($!); done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
mc=$(pgrep -P "$wpid" memcached)
[ -n "$mc" ] && kill -TERM "$mc"
wait "$wpid"; st=$?
if [ -s "$tmp/reports" ]; then echo "unexpected reports:"; cat "$tmp/reports"; fail=1; fi
[ "$st" != 66 ] || { echo "weft check found problems"; fail=1; }
[ $fail -eq 0 ] && echo "memcached: 2000 set/get round trips checked, nothing reported (exit $st)"
exit $fail
