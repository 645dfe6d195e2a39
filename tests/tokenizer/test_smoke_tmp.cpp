#include <catch2/catch.hpp>
#include "tokenizer/tokenizer.h"
TEST_CASE("tmp") { REQUIRE(true); }
