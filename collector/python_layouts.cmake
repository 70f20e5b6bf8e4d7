# CPython struct layouts from CPython's own headers (see python_layout.h).
#
# Included by collector/CMakeLists.txt: every CPython 3.10+ include directory that has the internal
# headers gets a generator (python_layout_gen.c compiled against it) whose output is collected into
#   python_layouts_system.inc  the system's directories (python3.X-dev): compiled into the collector
#   python_layouts_all.inc     those and pyenv's: the tests check the table against all of them
# Run with -P (MODE=concat) it concatenates INPUTS into OUTPUT.
if(MODE STREQUAL "concat")
  set(text "")
  foreach(input IN LISTS INPUTS)
    file(READ "${input}" part)
    string(APPEND text "${part}")
  endforeach()
  file(WRITE "${OUTPUT}" "${text}")
  return()
endif()

set(PERFWATCH_PYENV_ROOT "$ENV{HOME}/.pyenv" CACHE PATH "pyenv root whose CPython headers the layout tests check")
file(GLOB system_dirs LIST_DIRECTORIES true /usr/include/python3.* /usr/local/include/python3.*)
file(GLOB pyenv_dirs LIST_DIRECTORIES true "${PERFWATCH_PYENV_ROOT}/versions/*/include/python3.*")

set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/python_layouts")
file(MAKE_DIRECTORY "${out_dir}")
set(system_parts "")
set(all_parts "")
foreach(dir IN LISTS system_dirs pyenv_dirs)
  # Only 3.10 and later, and only with the internal headers (python3.X-dev ships them).
  if(NOT dir MATCHES "python3\\.([0-9]+)$" OR CMAKE_MATCH_1 LESS 10 OR NOT EXISTS "${dir}/internal/pycore_runtime.h")
    continue()
  endif()
  string(MAKE_C_IDENTIFIER "${dir}" id)
  add_executable(python_layout_gen_${id} python_layout_gen.c)
  target_include_directories(python_layout_gen_${id} PRIVATE "${dir}" "${dir}/internal")
  target_compile_options(python_layout_gen_${id} PRIVATE -w)  # CPython's headers, not ours
  set(part "${out_dir}/${id}.inc")
  add_custom_command(
    OUTPUT "${part}"
    COMMAND python_layout_gen_${id} "${dir}" > "${part}"
    DEPENDS python_layout_gen_${id}
    COMMENT "CPython layout from ${dir}"
    VERBATIM)
  list(APPEND all_parts "${part}")
  if(dir IN_LIST system_dirs)
    list(APPEND system_parts "${part}")
  endif()
endforeach()

foreach(kind system all)
  add_custom_command(
    OUTPUT "${out_dir}/python_layouts_${kind}.inc"
    COMMAND "${CMAKE_COMMAND}" -DMODE=concat "-DINPUTS=${${kind}_parts}" "-DOUTPUT=${out_dir}/python_layouts_${kind}.inc"
            -P "${CMAKE_CURRENT_SOURCE_DIR}/python_layouts.cmake"
    DEPENDS ${${kind}_parts} "${CMAKE_CURRENT_SOURCE_DIR}/python_layouts.cmake"
    VERBATIM)
endforeach()
add_custom_target(python_layouts DEPENDS "${out_dir}/python_layouts_system.inc" "${out_dir}/python_layouts_all.inc")
set(PERFWATCH_PYTHON_LAYOUTS_DIR "${out_dir}" CACHE INTERNAL "generated CPython layouts")
