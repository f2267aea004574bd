#!/usr/bin/env bash
# check-install.sh CASE - one case of the install tests (see CMakeLists.txt).
#
# `setup` installs the current build into $WEFT_WORK/prefix with
# `cmake --install`; every other case then uses that installed tree the way
# a user would (pkg-config, find_package, the headers, the command) and never
# looks at the build or source tree for headers or libraries. No network.
#
# Environment (set by CTest):
#   WEFT_BUILD     the build directory to install
#   WEFT_SOURCE    the source tree (for README.md and the consumer project)
#   WEFT_WORK      scratch directory; the prefix is $WEFT_WORK/prefix
#   CC             the compiler the build used
#   WEFT_SAN_FLAGS the sanitizer flags of the build ("" for a plain build);
#                  programs linking a sanitizer build of libweft need them
#
# Exit status: 0 pass, 1 fail, 77 skipped (reason printed).
set -euo pipefail
# With pipefail, `cmd | grep -q` (or `| head`) can fail when the reader exits
# early and cmd dies of SIGPIPE; pipes here read their whole input instead.

: "${WEFT_BUILD:?}" "${WEFT_SOURCE:?}" "${WEFT_WORK:?}" "${CC:?}"
WEFT_SAN_FLAGS=${WEFT_SAN_FLAGS-}
PREFIX=$WEFT_WORK/prefix
STRICT_C=(-std=c11 -pedantic -Wall -Wextra -Werror -Wshadow -Wundef -Wstrict-prototypes)
# No -Wshadow for C++: there weft_once() "hides" the implicit constructor of
# struct weft_once, which C++ code cannot call anyway (it uses weft_once_t).
STRICT_CXX=(-std=c++11 -pedantic -Wall -Wextra -Werror -Wundef)

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

skip() {
    echo "SKIPPED: $*"
    exit 77
}

# A fresh directory for one case, so cases can run in parallel.
case_dir() {
    local d=$WEFT_WORK/$1
    rm -rf "$d" && mkdir -p "$d" && echo "$d"
}

# The installed library directory: where weft.pc sits, one level up.
libdir_of() {
    local pc
    pc=$(find "$1" -name weft.pc -path '*/pkgconfig/*' -print -quit)
    [ -n "$pc" ] || fail "no weft.pc under $1"
    dirname "$(dirname "$pc")"
}

# pkg-config, finding weft.pc in the installed tree $1 before any other.
pc() {
    PKG_CONFIG_PATH="$(libdir_of "$1")/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" pkg-config "${@:2}"
}

# Every extra warning the compiler in $1 offers for headers.
extra_warnings() {
    case "$("$1" --version 2>/dev/null)" in
    *clang*) echo "-Wthread-safety" ;;
    esac
}

# run_expect_ok PROG: runs PROG, which must print "weft VERSION ok".
run_expect_ok() {
    local out want
    want="weft $(pc "$PREFIX" --modversion weft) ok"
    out=$("$@") || fail "$1 exited with status $?"
    [ "$out" = "$want" ] || fail "$1 printed '$out', expected '$want'"
}

# assert_loads PROG LIB: running PROG loads exactly the file LIB as
# libweft.so.0 (asked of the dynamic loader itself, with LD_DEBUG).
assert_loads() {
    local prog=$1 want=$2 log got
    log=$(dirname "$prog")/ld-debug.log
    LD_DEBUG=libs "$prog" >/dev/null 2>"$log" || fail "$prog failed under LD_DEBUG"
    got=$(sed -n 's/^ *[0-9]*:[[:space:]]*calling init: \(.*libweft\.so\.0\)$/\1/p' "$log")
    [ -n "$got" ] || fail "$prog did not load libweft.so.0 (see $log)"
    [ "$(realpath "$got")" = "$(realpath "$want")" ] ||
        fail "$prog loaded $got, expected $want"
    echo "loads $got"
}

# assert_no_libweft_needed PROG: PROG is linked without libweft.so.
assert_no_libweft_needed() {
    if readelf -d "$1" | grep 'NEEDED.*libweft' >/dev/null; then
        fail "$1 needs libweft.so; it should contain libweft.a's code"
    fi
    nm "$1" | grep ' T weft_version$' >/dev/null || fail "$1 does not contain weft_version"
}

case_setup() {
    rm -rf "$WEFT_WORK" && mkdir -p "$WEFT_WORK"
    cmake --install "$WEFT_BUILD" --prefix "$PREFIX" >"$WEFT_WORK/install.log" ||
        fail "cmake --install failed (see $WEFT_WORK/install.log)"
    echo "installed into $PREFIX"
}

case_layout() {
    local lib ver
    lib=$(libdir_of "$PREFIX")
    ver=$(pc "$PREFIX" --modversion weft)
    for h in weft.h $(cd "$WEFT_SOURCE/include" && echo weft/*.h); do
        [ -f "$PREFIX/include/$h" ] || fail "header $h not installed"
    done
    [ -f "$lib/libweft.so.$ver" ] || fail "no $lib/libweft.so.$ver"
    [ "$(readlink "$lib/libweft.so.0")" = "libweft.so.$ver" ] || fail "bad libweft.so.0 link"
    [ "$(readlink "$lib/libweft.so")" = "libweft.so.0" ] || fail "bad libweft.so link"
    readelf -d "$lib/libweft.so.$ver" | grep 'SONAME.*\[libweft\.so\.0\]' >/dev/null ||
        fail "soname of libweft.so is not libweft.so.0"
    ar t "$lib/libweft.a" | grep . >/dev/null || fail "libweft.a is empty"
    [ -f "$lib/cmake/weft/weftConfig.cmake" ] || fail "no CMake package config"
    [ -f "$lib/cmake/weft/weftConfigVersion.cmake" ] || fail "no CMake version file"
    [ "$("$PREFIX/bin/weft" version)" = "weft $ver" ] || fail "installed 'weft version' is wrong"
    ! grep -rqF "$PREFIX" "$lib/pkgconfig/weft.pc" "$lib/cmake/weft" ||
        fail "a package file records the install prefix (it must be relocatable)"
    echo "layout ok: headers, libweft.so.$ver (soname libweft.so.0), libweft.a, weft, weft.pc, CMake config"
}

# The shared library exports the public API and nothing else.
case_exports() {
    local lib bad
    lib=$(libdir_of "$PREFIX")/libweft.so
    # Sanitizer builds also export their instrumentation's "__" symbols.
    local allowed='^weft_[a-z0-9]'
    [ -z "$WEFT_SAN_FLAGS" ] || allowed='^(weft_[a-z0-9]|__)'
    bad=$(nm -D --defined-only "$lib" | awk '{ print $3 }' | grep -Ev "$allowed" || true)
    [ -z "$bad" ] || fail "libweft.so exports non-API symbols: $(tr "\n" " " <<<"$bad")"
    [ "$(nm -D --defined-only "$lib" | grep -c ' weft_')" -gt 0 ] || fail "no weft_ exports"
    echo "exports ok: $(nm -D --defined-only "$lib" | grep -c ' weft_') weft_ symbols"
}

# Each installed header compiles on its own, as strict C11, with every C
# compiler present.
case_headers_c() {
    local d n=0 cc
    d=$(case_dir headers_c)
    for cc in "$CC" gcc clang; do
        command -v "$cc" >/dev/null || continue
        for h in $(cd "$PREFIX/include" && find . -name '*.h' | sed 's|^\./||' | sort); do
            printf '#include <%s>\n' "$h" >"$d/one.c"
            # shellcheck disable=SC2046
            "$cc" "${STRICT_C[@]}" $(extra_warnings "$cc") -fsyntax-only \
                -I"$PREFIX/include" "$d/one.c" || fail "$h does not compile alone with $cc"
            n=$((n + 1))
        done
    done
    echo "headers ok as C11: $n compilations"
}

# Each installed header compiles on its own as C++ (extern "C", no C-only
# constructs), with every C++ compiler present.
case_headers_cxx() {
    local d n=0 cxx
    d=$(case_dir headers_cxx)
    for cxx in g++ clang++; do
        command -v "$cxx" >/dev/null || continue
        for h in $(cd "$PREFIX/include" && find . -name '*.h' | sed 's|^\./||' | sort); do
            printf '#include <%s>\n' "$h" >"$d/one.cc"
            # shellcheck disable=SC2046
            "$cxx" "${STRICT_CXX[@]}" $(extra_warnings "$cxx") -fsyntax-only \
                -I"$PREFIX/include" "$d/one.cc" || fail "$h does not compile alone with $cxx"
            n=$((n + 1))
        done
    done
    [ "$n" -gt 0 ] || skip "no C++ compiler (g++ or clang++) installed"
    echo "headers ok as C++11: $n compilations"
}

# cc prog.c $(pkg-config --cflags --libs weft), run against the installed .so.
pkgconfig_shared_in() {
    local root=$1 d=$2 lib
    lib=$(libdir_of "$root")
    # shellcheck disable=SC2046,SC2086
    "$CC" $WEFT_SAN_FLAGS -o "$d/consumer" "$WEFT_SOURCE/tests/install/consumer/consumer.c" \
        $(pc "$root" --cflags --libs weft) || fail "build with pkg-config failed"
    LD_LIBRARY_PATH=$lib run_expect_ok "$d/consumer"
    LD_LIBRARY_PATH=$lib assert_loads "$d/consumer" "$lib/libweft.so.0"
}

case_pkgconfig_shared() {
    pkgconfig_shared_in "$PREFIX" "$(case_dir pkgconfig_shared)"
}

# Static linking with pkg-config --static: a fully static program for a plain
# build; sanitizer runtimes cannot be linked statically, so there only
# libweft.a is taken (-Bstatic) and the rest is linked as usual.
case_pkgconfig_static() {
    local d
    d=$(case_dir pkgconfig_static)
    local src=$WEFT_SOURCE/tests/install/consumer/consumer.c
    # shellcheck disable=SC2046,SC2086
    if [ -z "$WEFT_SAN_FLAGS" ]; then
        "$CC" -static -o "$d/consumer" "$src" $(pc "$PREFIX" --cflags --libs --static weft) ||
            fail "static build with pkg-config --static failed"
        readelf -d "$d/consumer" | grep NEEDED >/dev/null && fail "-static program needs shared libraries"
    else
        "$CC" $WEFT_SAN_FLAGS -o "$d/consumer" "$src" $(pc "$PREFIX" --cflags weft) \
            -Wl,-Bstatic $(pc "$PREFIX" --libs --static weft) -Wl,-Bdynamic ||
            fail "build with pkg-config --static failed"
    fi
    assert_no_libweft_needed "$d/consumer"
    run_expect_ok "$d/consumer"
    echo "static program ok"
}

# A CMake project using find_package(weft); $2 is shared or static.
cmake_consumer_in() {
    local root=$1 link=$2 d=$3 log
    log=$d/configure.log
    # shellcheck disable=SC2086
    cmake -S "$WEFT_SOURCE/tests/install/consumer" -B "$d/build" \
        -DCMAKE_PREFIX_PATH="$root" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
        -DCMAKE_C_COMPILER="$CC" -DCMAKE_C_FLAGS="$WEFT_SAN_FLAGS" \
        -DCMAKE_EXE_LINKER_FLAGS="$WEFT_SAN_FLAGS" -DWEFT_LINK="$link" >"$log" ||
        fail "configuring the consumer project failed (see $log)"
    local dir
    dir=$(sed -n 's/^-- weft_DIR=//p' "$log")
    case "$(realpath "$dir")" in
    "$(realpath "$root")"/*) echo "find_package(weft) found $dir" ;;
    *) fail "find_package(weft) found '$dir', not the tree under $root" ;;
    esac
    cmake --build "$d/build" >"$d/build.log" || fail "building the consumer failed (see $d/build.log)"
    run_expect_ok "$d/build/consumer"
}

case_cmake_shared() {
    local d
    d=$(case_dir cmake_shared)
    cmake_consumer_in "$PREFIX" shared "$d"
    assert_loads "$d/build/consumer" "$(libdir_of "$PREFIX")/libweft.so.0"
}

case_cmake_static() {
    local d
    d=$(case_dir cmake_static)
    cmake_consumer_in "$PREFIX" static "$d"
    assert_no_libweft_needed "$d/build/consumer"
}

# A copy of the installed tree elsewhere works with both package files.
case_relocate() {
    local d moved
    d=$(case_dir relocate)
    moved=$d/moved
    cp -a "$PREFIX" "$moved"
    case "$(realpath "$(pc "$moved" --variable=includedir weft)")" in
    "$(realpath "$moved")"/*) ;;
    *) fail "weft.pc in a moved tree still points elsewhere" ;;
    esac
    mkdir -p "$d/pc" "$d/cmake"
    pkgconfig_shared_in "$moved" "$d/pc"
    cmake_consumer_in "$moved" shared "$d/cmake"
    assert_loads "$d/cmake/build/consumer" "$(libdir_of "$moved")/libweft.so.0"
}

# The fenced block that follows the line containing $1 in README.md.
readme_block() {
    awk -v marker="$1" '
        index($0, marker) { armed = 1; next }
        armed && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }
    ' "$WEFT_SOURCE/README.md"
}

# The README's example compiles as strict C11 against the installed tree and
# prints what the README says it prints.
case_readme_example() {
    local d missing
    d=$(case_dir readme_example)
    readme_block '<!-- example.c -->' >"$d/example.c"
    readme_block '<!-- example output -->' >"$d/expected.txt"
    [ -s "$d/example.c" ] || fail "README.md has no example after '<!-- example.c -->'"
    [ -s "$d/expected.txt" ] || fail "README.md has no output after '<!-- example output -->'"
    # shellcheck disable=SC2046,SC2086
    "$CC" "${STRICT_C[@]}" $(extra_warnings "$CC") $WEFT_SAN_FLAGS -c -o "$d/example.o" \
        "$d/example.c" $(pc "$PREFIX" --cflags weft) || fail "README example does not compile"
    # shellcheck disable=SC2046,SC2086
    if ! "$CC" $WEFT_SAN_FLAGS -o "$d/example" "$d/example.o" \
        $(pc "$PREFIX" --libs weft) 2>"$d/link.log"; then
        cat "$d/link.log" >&2
        missing=$(grep -o "undefined reference to \`weft_[a-z0-9_]*'" "$d/link.log" |
            sed "s/.*\`\(.*\)'/\1/" | sort -u | tr '\n' ' ')
        [ -n "$missing" ] && ! grep -v "weft_" "$d/link.log" | grep "undefined reference" >/dev/null &&
            skip "README example uses ${missing}which this libweft does not define yet"
        fail "README example does not link"
    fi
    LD_LIBRARY_PATH=$(libdir_of "$PREFIX") "$d/example" >"$d/output.txt" ||
        fail "README example exited with status $?"
    diff -u "$d/expected.txt" "$d/output.txt" || fail "README example printed something else"
    echo "README example ok: $(wc -l <"$d/example.c") lines, output as documented"
}

[ $# -eq 1 ] || fail "usage: check-install.sh CASE"
fn=case_$1
declare -F "$fn" >/dev/null || fail "no case named '$1'"
"$fn"
