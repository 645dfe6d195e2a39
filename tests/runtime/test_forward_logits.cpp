// forward_step returns the logits of every wanted row whether they fit one piece of the logits buffer or take
// several (ForwardBuffers::logits holds at most 256 MiB; scoring and parity steps may want more rows).
#include <catch2/catch.hpp>

#include "../attention/policy_test_util.h"
#include "backend/cpu/cpu_backend.h"
#include "forward_test_util.h"

using namespace lcllm;
using namespace policy_test;

TEST_CASE("forward_step's logits are the same in one piece or in pieces of 3 rows", "[runtime][forward]") {
  for (const auto& dir : fixture_dirs()) {
    const Fixture f = load_fixture(dir);
    INFO(f.name << ": " << f.prompt.size() << " rows");
    REQUIRE(f.prompt.size() > 3);
    CpuBackend whole_be(2), pieces_be(2);
    const std::vector<float> whole = test::prefill_all_logits(dir, whole_be, f.prompt, 0);
    const std::vector<float> pieces = test::prefill_all_logits(dir, pieces_be, f.prompt, 3);
    CHECK(pieces == whole);  // also: no NaN left, every row written
  }
}
