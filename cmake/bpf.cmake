# perfwatch_bpf_skeleton(NAME SOURCE)
# Compiles probes/NAME.bpf.c with clang into NAME.bpf.o and generates NAME.skel.h with bpftool.
# clang writes a depfile, so editing a header the program includes (NAME.h, vmlinux.h) rebuilds it.
# Defines an INTERFACE library perfwatch_bpf_NAME whose include path holds the skeleton.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

set(PERFWATCH_VMLINUX_DIR "${CMAKE_SOURCE_DIR}/probes/vmlinux/x86_64" CACHE PATH
    "Directory holding vmlinux.h for CO-RE (vendored; see probes/vmlinux/README.md)")

function(perfwatch_bpf_skeleton name source)
  set(out_dir "${CMAKE_BINARY_DIR}/probes")
  set(obj "${out_dir}/${name}.bpf.o")
  set(skel "${out_dir}/${name}.skel.h")
  set(dep "${out_dir}/${name}.bpf.d")
  get_filename_component(src "${source}" ABSOLUTE)
  file(MAKE_DIRECTORY "${out_dir}")

  add_custom_command(
    OUTPUT "${obj}"
    COMMAND "${BPF_CLANG}" -g -O2 -target bpf -D__TARGET_ARCH_x86 -mcpu=v3
            -Wall -Werror
            -I "${PERFWATCH_VMLINUX_DIR}" -I "${CMAKE_SOURCE_DIR}/probes"
            # <bpf/usdt.bpf.h> includes <linux/errno.h>, whose <asm/errno.h> is arch-specific.
            -idirafter "/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}"
            -MD -MF "${dep}" -MT "${obj}"
            -c "${src}" -o "${obj}.tmp"
    # Strip DWARF (BTF stays): smaller skeleton, same CO-RE relocations.
    COMMAND "${BPFTOOL}" gen object "${obj}" "${obj}.tmp"
    COMMAND "${CMAKE_COMMAND}" -E rm -f "${obj}.tmp"
    DEPENDS "${src}"
    DEPFILE "${dep}"
    COMMENT "BPF ${name}.bpf.c"
    VERBATIM)

  add_custom_command(
    OUTPUT "${skel}"
    COMMAND "${BPFTOOL}" gen skeleton "${obj}" name "${name}_bpf" > "${skel}.tmp"
    COMMAND "${CMAKE_COMMAND}" -E rename "${skel}.tmp" "${skel}"
    DEPENDS "${obj}"
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)

  add_custom_target(perfwatch_bpf_${name}_gen DEPENDS "${skel}")
  add_library(perfwatch_bpf_${name} INTERFACE)
  add_dependencies(perfwatch_bpf_${name} perfwatch_bpf_${name}_gen)
  target_include_directories(perfwatch_bpf_${name} INTERFACE "${out_dir}" "${CMAKE_SOURCE_DIR}/probes")
  target_link_libraries(perfwatch_bpf_${name} INTERFACE PkgConfig::LIBBPF PkgConfig::LIBELF)
endfunction()
