# Warning flags live in one INTERFACE target that every fleetctl target links, so a
# flag changes in one place (ccache: cmake/StandardWarnings.cmake).
option(FLEET_WERROR "Treat warnings as errors" ON)
option(FLEET_SANITIZE "Build with AddressSanitizer and UBSan" OFF)

add_library(fleet_warnings INTERFACE)
target_compile_options(fleet_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
  $<$<BOOL:${FLEET_WERROR}>:-Werror>)
# GCC 12 at -O3 (Release) reports -Wrestrict inside libstdc++'s std::string operator+ and
# single-character assignments (common/fs.cpp's `"." + name + ".tmp-XXXXXX"`): a false
# positive of that compiler, GCC bug 105329. A warning, never an error, for GCC 12 only; every
# other warning, and -Wrestrict on every other compiler, stays an error.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
   AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(fleet_warnings INTERFACE -Wno-error=restrict)
endif()
if(FLEET_SANITIZE)
  target_compile_options(fleet_warnings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(fleet_warnings INTERFACE -fsanitize=address,undefined)
endif()
