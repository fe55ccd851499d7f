# The fuzz tree (preset fuzz, option FLEET_FUZZ): libFuzzer harnesses over the parsers, built
# with Debian's clang (-fsanitize=fuzzer) and checked by ASan and UBSan. Every library in
# this tree is instrumented for coverage; only the harnesses link libFuzzer's main.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang" OR CMAKE_CXX_COMPILER_VERSION VERSION_LESS 16)
  # clang 14 cannot compile this project: libstdc++ 12's <expected> needs conditionally
  # trivial special members (P0848), which clang implements from 16 on.
  message(FATAL_ERROR "FLEET_FUZZ needs clang 16 or later (Debian 12: clang-16, libfuzzer-16-dev, "
                      "libclang-rt-16-dev); this is ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}")
endif()

# libstdc++ 12 offers std::expected only when __cpp_concepts >= 202002L. Clang 16-18
# implement what it needs but announce 201907L (clang 19 announces 202002L), so the tree
# says it for them. No other libstdc++ 12 header keys on that value but <variant> and
# <optional>'s constexpr destructors, which clang 16 has too.
if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 19)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-U__cpp_concepts> $<$<COMPILE_LANGUAGE:CXX>:-D__cpp_concepts=202002L>)
endif()

# Instrumented for coverage and checked, everything; -fno-sanitize-recover makes UBSan's
# report a crash that libFuzzer saves, instead of a line it scrolls past.
set(FLEET_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
add_compile_options(${FLEET_FUZZ_FLAGS})
add_link_options(-fsanitize=address,undefined)
