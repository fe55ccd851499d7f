# Run at every build (target fleet_build_info_gen): writes build_info.cpp with the git commit
# of the source tree, and rewrites it only when the commit changes, so an unchanged tree
# recompiles nothing. Outside a git checkout (a source tarball, a .deb built from one) the
# commit is "unknown", or FLEET_GIT_COMMIT from the environment.
# Inputs: SOURCE_DIR, OUTPUT.
set(commit "$ENV{FLEET_GIT_COMMIT}")
if(commit STREQUAL "")
  execute_process(COMMAND git -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR commit STREQUAL "")
    set(commit "unknown")
  else()
    execute_process(COMMAND git -C "${SOURCE_DIR}" diff --quiet HEAD -- RESULT_VARIABLE dirty ERROR_QUIET)
    if(NOT dirty EQUAL 0)
      string(APPEND commit "-dirty")
    endif()
  endif()
endif()
set(text "// Written by cmake/BuildInfo.cmake at build time.\n#include \"common/build_info.hpp\"\nnamespace fleet::build {\nconst char* const k_git_commit = \"${commit}\";\n}\n")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUTPUT}" "${text}")
endif()
