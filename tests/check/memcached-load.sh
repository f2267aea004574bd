#!/bin/bash
# memcached-load.sh WEFT: memcached (4 worker threads) under `weft check`,
# driven by 4 concurrent loopback clients doing a bounded number of set/get
# round trips each, every reply checked. Then memcached is stopped; nothing
# may be reported. Skips (77) when memcached is not installed.
set -u
weft=$1
command -v memcached >/dev/null || exit 77
tmp=$(mktemp -d) || exit 2
# A port below the kernel's ephemeral range, so that no client connection
# of a test running alongside holds it; if it is taken anyway, memcached
# exits at once and another port is tried.
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
wpid=
cleanup() {
    [ -n "$wpid" ] && { kill "$wpid" 2>/dev/null; pkill -TERM -P "$wpid" 2>/dev/null; }
    rm -rf "$tmp"
}
trap cleanup EXIT
up=0
for attempt in 1 2 3 4 5; do
    port=$((10000 + RANDOM % (low - 10000)))
    rm -f "$tmp/reports"
    "$weft" check --output "$tmp/reports" -- memcached -t 4 -p $port -U 0 -l 127.0.0.1 -u root -m 64 &
    wpid=$!
    for i in $(seq 50); do
        kill -0 "$wpid" 2>/dev/null || break
        # Up when memcached itself answers (not some other listener).
        (exec 3<>/dev/tcp/127.0.0.1/$port && printf 'version\r\n' >&3 &&
            read -t 2 -r line <&3 && [ "${line#VERSION}" != "$line" ]) 2>/dev/null &&
            { up=1; break; }
        sleep 0.1
    done
    [ $up -eq 1 ] && break
    wait "$wpid" 2>/dev/null
    echo "memcached did not start on port $port (attempt $attempt); trying another"
done
[ $up -eq 1 ] || { echo "memcached never started"; exit 1; }
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
