# Cross-compiling for the Pi 5 (Cortex-A76, aarch64) with Debian's gcc-aarch64-linux-gnu.
# Libraries come from Debian's arm64 packages (dpkg --add-architecture arm64), which live in
# /usr/lib/aarch64-linux-gnu and /usr/include/aarch64-linux-gnu beside the host's.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# Test binaries run under qemu-user; no -L: a second glibc tree makes it hang.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static)
# Never link a host (x86_64) library by mistake: Debian keeps both architectures under /usr/lib.
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu)
# pkg-config answers with the arm64 packages' .pc files.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
