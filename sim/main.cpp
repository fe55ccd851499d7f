// fleet-sim: thin entry point; the commands live in cli/.
#include <exception>
#include <iostream>

#include "sim/cli/cli.hpp"

int main(int argc, char** argv) {
  try {
    return fleet::sim::cli::run(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "fleet-sim: internal error: " << e.what() << "\n";
    return 70;
  }
}
