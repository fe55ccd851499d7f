#include <catch2/catch.hpp>

#include "controller/rollout/rollout.hpp"

TEST_CASE("dry run: a board that trusts keys would refuse an unsigned bundle or one signed by another key") {
  using fleet::rollout::signature_refusal;
  CHECK(signature_refusal({}, "", "").empty());          // trusts nothing: anything installs
  CHECK(signature_refusal({}, "aaaa", "").empty());
  CHECK(signature_refusal({"aaaa"}, "aaaa", "").empty());
  CHECK(signature_refusal({}, "bbbb", "bbbb").empty());  // this rollout adds the signer's key
  CHECK_THAT(signature_refusal({"aaaa"}, "", ""), Catch::Contains("trusts key aaaa and the bundle is not signed"));
  CHECK_THAT(signature_refusal({"aaaa"}, "cccc", ""), Catch::Contains("signed by key cccc"));
  CHECK_THAT(signature_refusal({"aaaa"}, "", "bbbb"), Catch::Contains("trusts key aaaa, bbbb"));
}
