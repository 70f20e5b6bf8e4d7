# Build-time helper (cmake -P) for the symbolizer tests' stripped binaries.
#   MODE=build-id:  BINARY -> stripped copy OUTPUT, and its debug info in DEBUG_ROOT/.build-id/xx/rest.debug
#   MODE=debuglink: BINARY -> debug info OUTPUT.debug beside OUTPUT, and stripped OUTPUT with a .gnu_debuglink to it
foreach(var MODE BINARY OUTPUT OBJCOPY)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "split_debug.cmake needs -D${var}=...")
  endif()
endforeach()

if(MODE STREQUAL "build-id")
  execute_process(COMMAND "${READELF}" -n "${BINARY}" OUTPUT_VARIABLE notes COMMAND_ERROR_IS_FATAL ANY)
  if(NOT notes MATCHES "Build ID: ([0-9a-f]+)")
    message(FATAL_ERROR "${BINARY} has no build-id")
  endif()
  set(id "${CMAKE_MATCH_1}")
  string(SUBSTRING "${id}" 0 2 head)
  string(SUBSTRING "${id}" 2 -1 tail)
  file(MAKE_DIRECTORY "${DEBUG_ROOT}/.build-id/${head}")
  execute_process(COMMAND "${OBJCOPY}" --only-keep-debug "${BINARY}" "${DEBUG_ROOT}/.build-id/${head}/${tail}.debug"
                  COMMAND_ERROR_IS_FATAL ANY)
  execute_process(COMMAND "${OBJCOPY}" --strip-all "${BINARY}" "${OUTPUT}" COMMAND_ERROR_IS_FATAL ANY)
elseif(MODE STREQUAL "debuglink")
  get_filename_component(dir "${OUTPUT}" DIRECTORY)
  get_filename_component(name "${OUTPUT}" NAME)
  # objcopy records the debug file's name and CRC; run it in the output directory so the name has no path.
  execute_process(COMMAND "${OBJCOPY}" --only-keep-debug "${BINARY}" "${OUTPUT}.debug" COMMAND_ERROR_IS_FATAL ANY)
  execute_process(COMMAND "${OBJCOPY}" --strip-all "--add-gnu-debuglink=${name}.debug" "${BINARY}" "${OUTPUT}"
                  WORKING_DIRECTORY "${dir}" COMMAND_ERROR_IS_FATAL ANY)
else()
  message(FATAL_ERROR "unknown MODE ${MODE}")
endif()
