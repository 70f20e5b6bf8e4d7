#!/usr/bin/env bash
# Regenerates the vendored vmlinux.h from the running kernel's BTF.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$here/x86_64/vmlinux.h"
echo "wrote $here/x86_64/vmlinux.h"
