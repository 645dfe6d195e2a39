// Streaming detokenization: pieces are whole UTF-8 characters and add up to the full decode.
#include <catch2/catch.hpp>

#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/unicode_util.h"
#include "tokenizer_test_util.h"

using namespace lcllm;
using namespace lcllm::test;

namespace {
void check_stream(const Tokenizer& tok, const std::string& name) {
  int bad = 0;
  for (const auto& c : ref_cases(name)) {
    for (bool skip : {true, false}) {
      IncrementalDetokenizer det(tok, skip);
      std::string streamed;
      bool pieces_valid = true;
      for (int32_t id : c.ids_special) {
        const std::string piece = det.push(id);
        pieces_valid = pieces_valid && utf8_is_valid(piece);
        streamed += piece;
      }
      const std::string rest = det.finish();
      pieces_valid = pieces_valid && utf8_is_valid(rest);
      streamed += rest;
      const std::string full = tok.decode(c.ids_special, skip);
      if ((streamed != full || !pieces_valid) && bad++ < 5) {
        INFO(name << " text " << escape(c.text) << " skip " << skip << "\nwant " << escape(full) << "\n got "
                  << escape(streamed));
        CHECK(streamed == full);
        CHECK(pieces_valid);
      }
    }
  }
  CHECK(bad == 0);
}
}  // namespace

TEST_CASE("streamed pieces add up to the full decode on every corpus string", "[tokenizer][detok]") {
  for (const char* name : kTokenizerNames) {
    SECTION(name) { check_stream(real_tokenizer(name), name); }
  }
  SECTION("llama2 tokenizer.model") { check_stream(llama2_spm(), "llama2"); }
}

TEST_CASE("streaming emits text as soon as a character is complete", "[tokenizer][detok]") {
  for (const char* name : kTokenizerNames) {
    const Tokenizer& tok = real_tokenizer(name);
    IncrementalDetokenizer det(tok);
    const auto ids = tok.encode("Hello world, 我爱你 😀!", false);
    std::vector<std::string> pieces;
    for (int32_t id : ids) pieces.push_back(det.push(id));
    INFO(name);
    CHECK(!pieces.front().empty());                       // "Hello" right away
    CHECK(pieces.front().find("Hello") != std::string::npos);
    std::string all;
    for (auto& p : pieces) all += p;
    all += det.finish();
    CHECK(all == tok.decode(ids, true));
  }
}

TEST_CASE("a byte-fallback character split over several ids is emitted whole", "[tokenizer][detok]") {
  const Tokenizer& tok = real_tokenizer("llama2");
  // U+1F980 is not in llama2's vocabulary: four <0xNN> tokens.
  const auto ids = tok.encode("🦀", false);
  REQUIRE(ids.size() == 5);  // "▁" + 4 bytes
  IncrementalDetokenizer det(tok);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(det.push(id));
  CHECK(pieces[1].empty());
  CHECK(pieces[2].empty());
  CHECK(pieces[3].empty());
  CHECK(pieces[4] == "🦀");
  CHECK(det.finish().empty());
}

TEST_CASE("an incomplete sequence at the end comes out as U+FFFD from finish()", "[tokenizer][detok]") {
  const Tokenizer& tok = real_tokenizer("llama3");
  const auto ids = tok.encode("😀", false);  // byte-level: the emoji spans byte tokens
  IncrementalDetokenizer det(tok);
  std::string out;
  for (std::size_t i = 0; i + 1 < ids.size(); ++i) out += det.push(ids[i]);
  const std::vector<int32_t> partial(ids.begin(), ids.end() - 1);
  out += det.finish();
  CHECK(out == tok.decode(partial, true));
}
