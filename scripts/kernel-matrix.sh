#!/usr/bin/env bash
# The kernel matrix: boots Debian 12's own kernels under qemu in software emulation (TCG; nested KVM does
# not work on the CI VMs) with this machine's root file system, and runs perfwatch's tests inside each.
#
#   scripts/kernel-matrix.sh kernels                    the kernel ids and the packages they resolve to now
#   scripts/kernel-matrix.sh fetch [ID...]              download and unpack the kernels (default: all)
#   scripts/kernel-matrix.sh run [OPTIONS] ID -- CMD... run CMD in the guest, in the current directory;
#                                                       streams its output and exits with its status
#        --timeout SECONDS  (default 900; 124 when it runs out)   --out DIR  keep the results share here
#        --systemd          boot the real systemd, which runs CMD as kernel-matrix.service
#   scripts/kernel-matrix.sh ci BUILD_DIR               what CI runs: in every kernel, the BTF check,
#                                                       bpf_test and one end-to-end daemon run; then the
#                                                       shipped unit under systemd in one kernel
#   scripts/kernel-matrix.sh unit BUILD_DIR [ID]        only the shipped unit under systemd (default 6.12)
#
# Kernel ids: 6.1 (the kernel linux-image-amd64 depends on, Debian 12's default) and 6.12 (the newest
# linux-image-6.12.*+deb12-amd64-unsigned). The package names are resolved with apt-cache at every run,
# fetched with apt-get download and unpacked with dpkg -x (never installed) under $PERFWATCH_KERNEL_CACHE
# (default /var/cache/perfwatch-kernels), which is reused between runs; superseded point releases are
# pruned from it. The guest: scripts/vm/init (its PID 1, from an initramfs built here), the host's root
# read-only over 9p under an overlay on a scratch ext4 disk, 2 emulated CPUs, 4 GiB.
# Results of `ci` are kept under BUILD_DIR/kernel-matrix/ (console, step logs, gtest XML, statuses).
# KERNEL_MATRIX_TIMEOUT: seconds per guest in `ci` and `unit` (default 600).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${PERFWATCH_KERNEL_CACHE:-/var/cache/perfwatch-kernels}
all_kernels=(6.1 6.12)
unit_kernel=6.12
# Scratch directories, removed however the script ends (a guest's disk image is 32 GiB sparse), and the
# guest running, stopped.
scratch=()
qemu_pid=""
trap '[ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null; rm -rf "${scratch[@]}"' EXIT

die() {
  echo "kernel-matrix: $*" >&2
  exit 1
}

# Package name of a kernel id, from the package lists apt has now.
resolve_package() {
  case $1 in
    6.1) apt-cache depends linux-image-amd64 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-6\.1\.[0-9]*-[0-9]*-amd64\)$/\1/p' | head -n 1 ;;
    6.12) apt-cache pkgnames linux-image-6.12. 2>/dev/null |
            grep -E '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' | sort -V | tail -n 1 ;;
  esac
}

# The uname -r of a kernel package.
package_release() {
  local release=${1#linux-image-}
  echo "${release%-unsigned}"
}

# Cached releases of the same series as a kernel id (to prune superseded point releases).
series_glob() {
  case $1 in
    6.1) echo '6.1.0-*-amd64' ;;
    6.12) echo '6.12.*+deb12-amd64' ;;
  esac
}

# Downloads and unpacks a kernel into the cache unless it is there; prints its directory. Package lists
# older than the mirror (a point release replaced) are refreshed once.
fetch_kernel() {
  local id=$1 package release dir tmp
  [[ " ${all_kernels[*]} " == *" $id "* ]] || die "unknown kernel id '$id' (known: ${all_kernels[*]})"
  package=$(resolve_package "$id")
  if [ -z "$package" ]; then
    apt-get update -qq >&2 || true
    package=$(resolve_package "$id")
  fi
  if [ -z "$package" ]; then
    # No lists and no mirror (offline): the newest release of this kernel already cached.
    dir=$(ls -d "$cache"/$(series_glob "$id") 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -f "$dir/.complete" ] || die "no package for kernel $id in apt's lists, and none cached"
    echo "kernel-matrix: apt knows no package for kernel $id; using the cached $(basename "$dir")" >&2
    echo "$dir"
    return
  fi
  release=$(package_release "$package")
  dir=$cache/$release
  if [ ! -f "$dir/.complete" ]; then
    mkdir -p "$cache"
    exec 9>"$cache/.lock"
    flock 9
    if [ ! -f "$dir/.complete" ]; then
      echo "kernel-matrix: fetching $package" >&2
      tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
      chmod 0755 "$tmp"  # apt-get download writes as _apt where it can
      if ! (cd "$tmp" && apt-get download -q "$package" >&2 2>/dev/null); then
        apt-get update -qq >&2
        package=$(resolve_package "$id")
        [ "$(package_release "$package")" = "$release" ] || { rm -rf "$tmp"; flock -u 9; fetch_kernel "$id"; return; }
        (cd "$tmp" && apt-get download -q "$package" >&2) || { rm -rf "$tmp"; die "cannot download $package"; }
      fi
      dpkg -x "$tmp"/*.deb "$tmp/root"
      depmod -b "$tmp/root" "$release"
      rm -rf "$dir"
      mv "$tmp/root" "$dir"
      touch "$dir/.complete"
      rm -rf "$tmp"
      local old
      for old in "$cache"/$(series_glob "$id"); do
        [ "$old" = "$dir" ] || [ ! -d "$old" ] || { echo "kernel-matrix: pruning $old" >&2; rm -rf "$old"; }
      done
    fi
    flock -u 9
  fi
  echo "$dir"
}

# initramfs: busybox, the modules that mount the 9p root, the overlay and its ext4 disk (with their dependencies, in
# load order, decompressed), scripts/vm/init, and the systemd units of --systemd.
build_initramfs() {
  local kdir=$1 release=$2 out=$3 root line module name
  root=$(dirname "$out")/initramfs
  rm -rf "$root"
  mkdir -p "$root"/{bin,dev,proc,sys,modules,units}
  cp /bin/busybox "$root/bin/busybox"
  cp "$repo/scripts/vm/init" "$root/init"
  cp "$repo/scripts/vm/kernel-matrix.target" "$repo/scripts/vm/kernel-matrix.service" "$root/units/"
  mknod "$root/dev/console" c 5 1
  : >"$root/modules/order"
  while read -r line; do
    case $line in
      insmod\ *) module=${line#insmod }; module=${module%% *} ;;
      *) continue ;;  # builtin
    esac
    name=$(basename "$module"); name=${name%.xz}
    grep -qx "$name" "$root/modules/order" && continue
    case $module in
      *.xz) xz -dc "$module" >"$root/modules/$name" ;;
      *) cp "$module" "$root/modules/$name" ;;
    esac
    echo "$name" >>"$root/modules/order"
  done < <(for m in virtio_pci 9pnet_virtio 9p overlay virtio_blk ext4; do modprobe -d "$kdir" -S "$release" --show-depends "$m"; done)
  echo "$kdir/lib/modules/$release" >"$root/modules/tree"
  (cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) >"$out"
}

# Boots a fetched kernel and runs a command in it: boot KERNEL_DIR OUT_DIR TIMEOUT MODE CMD...; returns its status. A guest
# that dies before the command starts is booted once more: TCG's cross-modifying code can, rarely, crash a
# kernel patching its own text at boot ("Oops: int3" in the patched function).
boot() {
  local kdir=$1 out=$2 timeout=$3 mode=$4 release work rc attempt
  shift 4
  [ -f "$kdir/.complete" ] || die "no kernel to boot (see above)"
  release=$(basename "$kdir")
  work=$(mktemp -d /tmp/kernel-matrix.XXXXXX)
  scratch+=("$work")
  build_initramfs "$kdir" "$release" "$work/initramfs.cpio"
  mkdir -p "$out"
  {
    echo "cd $(printf %q "$PWD") || exit 125"
    printf 'exec'
    printf ' %q' "$@"
    echo
  } >"$out/command"
  # mitigations=off: the guest runs on an emulated CPU; speculation mitigations only cost time there.
  local cmdline="console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off tsc=reliable km.mode=$mode"
  [ "$mode" != systemd ] || cmdline+=" systemd.unit=kernel-matrix.target systemd.show_status=false"
  # The guest's /tmp is its own tmpfs: a checkout under the host's /tmp is shown there by name.
  local top
  for top in $(printf '%s\n' "$PWD" "$repo" | sed -n 's|^\(/tmp/[^/]*\).*|\1|p' | sort -u); do
    case $top in *[[:space:]]*) die "a checkout under /tmp with a space in its name cannot be shown to the guest: $top" ;; esac
    cmdline+=" km.tmp=$top"
  done
  for attempt in 1 2; do
    rm -f "$out/status" "$out/started" "$work/rw.img"
    # The overlay's upper layer: sparse, formatted here, gone with the guest.
    truncate -s 32G "$work/rw.img"
    mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$work/rw.img"
    # In the background, so that the EXIT trap can stop it when this script is stopped.
    timeout --kill-after=10 "$timeout" qemu-system-x86_64 \
      ${KERNEL_MATRIX_ACCEL:--accel tcg,thread=multi} -cpu max,la57=off -smp 2 -m 4G \
      -nodefaults -no-reboot -display none -monitor none -serial stdio -nic none \
      -kernel "$kdir/boot/vmlinuz-$release" -initrd "$work/initramfs.cpio" -append "$cmdline" \
      -virtfs local,path=/,mount_tag=root,security_model=none,readonly=on,multidevs=remap \
      -virtfs "local,path=$out,mount_tag=out,security_model=none,multidevs=remap" \
      -drive "file=$work/rw.img,format=raw,if=virtio,cache=unsafe" \
      </dev/null > >(tr -d '\r' | tee "$out/console.log") 2>&1 &
    qemu_pid=$!
    rc=0
    wait "$qemu_pid" || rc=$?
    qemu_pid=""
    wait  # for the console's copy to be complete
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] || [ -f "$out/started" ] || [ "$attempt" -eq 2 ]; then break; fi
    mv "$out/console.log" "$out/console-crashed-boot.log"
    echo "kernel-matrix: $release: the guest died while booting (qemu exit status $rc); booting it again" >&2
  done
  rm -rf "$work"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "kernel-matrix: $release: timed out after ${timeout}s" >&2
    return 124
  fi
  if [ ! -f "$out/status" ]; then
    echo "kernel-matrix: $release: the guest stopped before the command finished (qemu exit status $rc; see the console above)" >&2
    return 125
  fi
  return "$(cat "$out/status")"
}

cmd_run() {
  local timeout=900 out="" mode=run id
  while [ $# -gt 0 ]; do
    case $1 in
      --timeout) timeout=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      --systemd) mode=systemd; shift ;;
      --) shift; break ;;
      -*) die "run: unknown option $1" ;;
      *) [ -z "${id:-}" ] || die "run: one kernel id, then -- COMMAND"; id=$1; shift ;;
    esac
  done
  [ -n "${id:-}" ] && [ $# -gt 0 ] || die "usage: kernel-matrix.sh run [--timeout S] [--out DIR] [--systemd] ID -- COMMAND..."
  if [ -z "$out" ]; then
    out=$(mktemp -d /tmp/kernel-matrix-out.XXXXXX)
    scratch+=("$out")
  fi
  local rc=0
  boot "$(fetch_kernel "$id")" "$out" "$timeout" "$mode" "$@" || rc=$?
  return "$rc"
}

# The steps of a guest-ci.sh run: the three every kernel runs, then those only some kernels run.
steps_of() {
  local out=$1 status name
  echo btf bpf_test e2e
  for status in "$out"/*.status; do
    name=$(basename "$status" .status)
    case $name in btf | bpf_test | e2e | '*') ;; *) echo "$name" ;; esac
  done
}

# The steps a guest-ci.sh run recorded: "STEP EXIT SECONDS" lines, failed gtest names after them.
report_steps() {
  local out=$1 step rc seconds
  for step in $(steps_of "$out"); do
    if [ ! -f "$out/$step.status" ]; then
      printf '  %-9s did not run\n' "$step"
      continue
    fi
    read -r rc seconds <"$out/$step.status"
    if [ "$rc" -eq 0 ]; then
      printf '  %-9s ok (%s s)\n' "$step" "$seconds"
    else
      printf '  %-9s FAILED (exit %s, %s s)\n' "$step" "$rc" "$seconds"
    fi
  done
}

# "KERNEL: STEP: what failed" for each failure of a guest-ci.sh run: each failed test with where and what
# (from gtest's XML), after a crash (no XML) the tests failed so far and the one it died in, else the
# step's last line.
failures() {
  local release=$1 out=$2 step rc seconds running
  for step in $(steps_of "$out"); do
    if [ ! -f "$out/$step.status" ]; then
      echo "$release: $step: did not finish"
      continue
    fi
    read -r rc seconds <"$out/$step.status"
    [ "$rc" -ne 0 ] || continue
    if [ "$rc" -ge 128 ]; then
      sed -n 's/^\[  FAILED  \] \([^ ]*\) (.*/\1/p' "$out/$step.log" | sed "s|^|$release: $step: |"
      running=$(sed -n 's/^\[ RUN      \] //p' "$out/$step.log" | tail -n 1)
      echo "$release: $step: killed by signal $((rc - 128)) in ${running:-its start-up}"
    elif [ -f "$out/$step.xml" ]; then
      python3 "$repo/scripts/vm/gtest-failures.py" "$out/$step.xml" | sed "s|^|$release: $step: |"
    else
      echo "$release: $step: exit $rc: $(tail -n 1 "$out/$step.log")"
    fi
  done
}

cmd_ci() {
  local build=${1:?usage: kernel-matrix.sh ci BUILD_DIR} id kdir release out start rc
  build=$(cd "$build" && pwd)
  [ -x "$build/tests/bpf/bpf_test" ] && [ -x "$build/tests/e2e/e2e_matrix_test" ] ||
    die "$build has no tests/bpf/bpf_test or tests/e2e/e2e_matrix_test: build it first"
  local results=$build/kernel-matrix summary="" failed=""
  rm -rf "$results"
  cd "$repo"
  for id in "${all_kernels[@]}"; do
    kdir=$(fetch_kernel "$id")
    release=$(basename "$kdir")
    out=$results/$release
    echo "=== kernel-matrix: $release ($id): btf, bpf_test, e2e (and the clock test in 6.12)"
    start=$(date +%s)
    rc=0
    boot "$kdir" "$out" "${KERNEL_MATRIX_TIMEOUT:-600}" run bash scripts/vm/guest-ci.sh "$build" || rc=$?
    summary+="kernel $release ($id): $(($(date +%s) - start)) s"$'\n'
    summary+=$(report_steps "$out")$'\n'
    [ ! -f "$out/e2e.log" ] || summary+=$(sed -n 's/^attach: /  attach: /p' "$out/e2e.log")$'\n'
    local found
    found=$(failures "$release" "$out")
    if [ -n "$found" ]; then
      failed+=$found$'\n'
    elif [ "$rc" -ne 0 ]; then
      failed+="$release: guest-ci.sh: exit $rc"$'\n'
    fi
  done
  echo "=== kernel-matrix: the shipped unit under systemd ($unit_kernel)"
  start=$(date +%s)
  kdir=$(fetch_kernel "$unit_kernel")
  rc=0
  boot "$kdir" "$results/unit-$(basename "$kdir")" "${KERNEL_MATRIX_TIMEOUT:-600}" systemd \
    bash scripts/vm/unit-test.sh "$build" || rc=$?
  summary+="unit (systemd, $(basename "$kdir")): $( [ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc)" ), $(($(date +%s) - start)) s"$'\n'
  [ "$rc" -eq 0 ] || failed+="$(basename "$kdir"): unit-test.sh: $(grep -m1 '^unit-test: FAILED' "$results/unit-$(basename "$kdir")/console.log" || echo "exit $rc")"$'\n'

  echo
  echo "=== kernel-matrix summary (results under $results)"
  printf '%s' "$summary"
  if [ -n "$failed" ]; then
    echo "=== kernel-matrix: FAILED"
    printf '%s\n' "$failed" | sed '/^$/d; s/^/FAILED: /'
    return 1
  fi
}

case ${1:-} in
  kernels)
    for id in "${all_kernels[@]}"; do echo "$id $(resolve_package "$id")"; done ;;
  fetch)
    shift
    for id in "${@:-${all_kernels[@]}}"; do fetch_kernel "$id"; done ;;
  run)
    shift
    cmd_run "$@" ;;
  ci)
    shift
    cmd_ci "$@" ;;
  unit)
    shift
    build=$(cd "${1:?usage: kernel-matrix.sh unit BUILD_DIR [ID]}" && pwd)
    cd "$repo"
    boot "$(fetch_kernel "${2:-$unit_kernel}")" "$build/kernel-matrix/unit" "${KERNEL_MATRIX_TIMEOUT:-600}" systemd \
      bash scripts/vm/unit-test.sh "$build" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2 ;;
esac
