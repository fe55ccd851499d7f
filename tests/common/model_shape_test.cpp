#include <catch2/catch.hpp>

#include "common/model_shape.hpp"

using namespace fleet;

TEST_CASE("the known shapes have their published sizes") {
  // Llama 2 7B in Q4_0 is about 3.8 GB with embeddings; its matrices are 6.6 G weights.
  auto s7 = shape_named("7b");
  REQUIRE(s7);
  CHECK(s7->weights() == 6'607'077'376ull);
  CHECK(s7->weights() / 32 * 18 == 3'716'481'024ull);
  auto s1 = shape_named("1b");
  REQUIRE(s1);
  CHECK(s1->kv_dim() == 512);  // grouped-query attention: 8 of 32 heads
  CHECK(s1->layer_weights() == 2048ull * 2048 * 2 + 512ull * 2048 * 2 + 8192ull * 2048 * 3);
  for (const auto& s : known_shapes()) CHECK(check_shape(s));
  CHECK_FALSE(shape_named("13b"));
}

TEST_CASE("shapes that Q4_0 cannot hold are refused by name") {
  ModelShape s{"odd", 100, 2, 256, 4, 4, 1000, "test"};
  auto r = check_shape(s);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("'odd'") != std::string::npos);
  CHECK(r.error().message.find("multiples of 32") != std::string::npos);
  CHECK_FALSE(check_shape({"zero", 0, 2, 256, 4, 4, 1000, "test"}));
  CHECK_FALSE(check_shape({"gqa", 128, 2, 256, 4, 3, 1000, "test"}));
}
