# Warning flags live in one INTERFACE target that every fleetctl target links, so a
# flag changes in one place (ccache: cmake/StandardWarnings.cmake).
option(FLEET_WERROR "Treat warnings as errors" ON)
option(FLEET_SANITIZE "Build with AddressSanitizer and UBSan" OFF)

add_library(fleet_warnings INTERFACE)
target_compile_options(fleet_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
  $<$<BOOL:${FLEET_WERROR}>:-Werror>)
if(FLEET_SANITIZE)
  target_compile_options(fleet_warnings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(fleet_warnings INTERFACE -fsanitize=address,undefined)
endif()
