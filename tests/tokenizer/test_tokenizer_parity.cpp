// Exactness against Hugging Face `tokenizers` on the committed reference corpora (every string, every tokenizer).
#include <catch2/catch.hpp>

#include "tokenizer_test_util.h"

using namespace lcllm;
using namespace lcllm::test;

namespace {
// Checks every case and reports the first few mismatches in full (one failing CHECK per mismatch kind).
void check_parity(const std::string& name) {
  const Tokenizer& tok = real_tokenizer(name);
  const auto& cases = ref_cases(name);
  REQUIRE(cases.size() >= 2000);
  int bad_ids = 0, bad_special = 0, bad_decode = 0, bad_skip = 0, shown = 0;
  for (const auto& c : cases) {
    const auto ids = tok.encode(c.text, false);
    const auto ids_sp = tok.encode(c.text, true);
    const std::string dec = tok.decode(c.ids, false);
    const std::string dskip = tok.decode(c.ids_special, true);
    const bool ok = ids == c.ids && ids_sp == c.ids_special && dec == c.decoded && dskip == c.decoded_skip;
    bad_ids += ids != c.ids;
    bad_special += ids_sp != c.ids_special;
    bad_decode += dec != c.decoded;
    bad_skip += dskip != c.decoded_skip;
    if (!ok && shown++ < 5) {
      INFO("tokenizer " << name << " text " << escape(c.text));
      INFO("want ids " << show_ids(c.ids) << "\n got ids " << show_ids(ids));
      INFO("want special " << show_ids(c.ids_special) << "\n got special " << show_ids(ids_sp));
      INFO("want decoded " << escape(c.decoded) << "\n got decoded " << escape(dec));
      INFO("want decoded_skip " << escape(c.decoded_skip) << "\n got decoded_skip " << escape(dskip));
      CHECK(ok);
    }
    if (c.roundtrip) CHECK(tok.decode(ids, false) == c.text);
  }
  INFO(name << ": " << cases.size() << " cases");
  CHECK(bad_ids == 0);
  CHECK(bad_special == 0);
  CHECK(bad_decode == 0);
  CHECK(bad_skip == 0);
}
}  // namespace

TEST_CASE("llama2 tokenizer.json matches HF tokenizers on the reference corpus", "[tokenizer][parity]") {
  check_parity("llama2");
}
TEST_CASE("llama3 tokenizer.json matches HF tokenizers on the reference corpus", "[tokenizer][parity]") {
  check_parity("llama3");
}
TEST_CASE("qwen3 tokenizer.json matches HF tokenizers on the reference corpus", "[tokenizer][parity]") {
  check_parity("qwen3");
}
TEST_CASE("gemma3 tokenizer.json matches HF tokenizers on the reference corpus", "[tokenizer][parity]") {
  check_parity("gemma3");
}

TEST_CASE("llama2 tokenizer.model matches the sentencepiece package on the reference corpus", "[tokenizer][parity]") {
  const Tokenizer& tok = llama2_spm();
  int bad = 0;
  for (const auto& c : ref_cases("llama2")) {
    const auto ids = tok.encode(c.text, false);
    if (ids != c.spm_ids && bad++ < 5) {
      INFO("text " << escape(c.text) << "\nwant " << show_ids(c.spm_ids) << "\n got " << show_ids(ids));
      CHECK(ids == c.spm_ids);
    }
    CHECK(tok.decode(c.spm_ids, true) == c.spm_decoded);
    auto with_bos = tok.encode(c.text, true);
    REQUIRE(!with_bos.empty());
    CHECK(with_bos[0] == 1);
  }
  CHECK(bad == 0);
}

TEST_CASE("encode_at_most is encode up to its bound, and gives up past it", "[tokenizer][bounded]") {
  // E12 item 3: the server tokenizes a prompt only as far as the context could hold it. Within the bound the ids
  // must be exactly encode()'s; one id over it, nothing.
  for (const char* name : kTokenizerNames) {
    const Tokenizer& tok = real_tokenizer(name);
    int checked = 0;
    for (const RefCase& c : ref_cases(name)) {
      for (const bool special : {false, true}) {
        const std::vector<int32_t> full = tok.encode(c.text, special);
        const auto exact = tok.encode_at_most(c.text, special, full.size());
        REQUIRE(exact.has_value());
        CHECK(*exact == full);
        if (!full.empty()) CHECK_FALSE(tok.encode_at_most(c.text, special, full.size() - 1).has_value());
        ++checked;
      }
    }
    INFO(name);
    CHECK(checked > 10);
  }
}
