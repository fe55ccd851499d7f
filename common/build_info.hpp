#pragma once
// What `fleetctl --version` and `fleet-agent --version` print besides the version: the git
// commit the binary was built from ("-dirty" with uncommitted changes; "unknown" outside a
// checkout). Written at build time by cmake/BuildInfo.cmake.
namespace fleet::build {
extern const char* const k_git_commit;
}
