// Tokenizers built from GGUF metadata (tokenizer/gguf_tokenizer.h, E10 item 4): handcrafted files pin the rules
// (merges rebuilt from SentencePiece scores, byte-level BPE, special tokens, BOS), and the two real models match
// their references id for id on the 2,015-string corpus: Gemma 3's GGUF against Gemma 3's own tokenizer.json, and
// SmolLM2's against transformers' tokenizer for the same GGUF (tools/make_gguf_refs.py). The real-model cases need
// tools/fetch_models.sh's files (LCLLM_MODEL_CACHE, default ~/.cache/lcllm/models); without them they only warn.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "io/gguf.h"
#include "tests/io/gguf_test_util.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer_test_util.h"

using namespace lcllm;
using namespace lcllm::test;

namespace {

std::unique_ptr<Tokenizer> from_image(const std::string& image, const std::string& name) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path, std::ios::binary) << image;
  return Tokenizer::load(path.string());
}

void check_against(const Tokenizer& tok, const std::vector<RefCase>& cases, const std::string& what) {
  REQUIRE(cases.size() >= 2000);
  int bad = 0, absent = 0;
  for (const RefCase& c : cases) {
    // Gemma 3's tokenizer.json has one token more than its GGUF (<image_soft_token>, id 262144, added for the
    // vision tower): strings whose reference uses a token the file does not have are not comparable.
    if (std::any_of(c.ids_special.begin(), c.ids_special.end(), [&](int32_t id) { return id >= tok.vocab_size(); })) {
      ++absent;
      continue;
    }
    const auto ids = tok.encode(c.text, false), ids_sp = tok.encode(c.text, true);
    const std::string dec = tok.decode(c.ids, false);
    const bool ok = ids == c.ids && ids_sp == c.ids_special && dec == c.decoded;
    if (!ok && bad++ < 5) {
      INFO(what << " text " << escape(c.text));
      INFO("want " << show_ids(c.ids) << " / " << show_ids(c.ids_special) << " " << escape(c.decoded));
      INFO(" got " << show_ids(ids) << " / " << show_ids(ids_sp) << " " << escape(dec));
      CHECK(ok);
    }
  }
  INFO(what << ": " << bad << " of " << cases.size() << " strings differ, " << absent << " use tokens the file lacks");
  CHECK(bad == 0);
  CHECK(absent * 50 < int(cases.size()));
}

}  // namespace

TEST_CASE("a SentencePiece-style GGUF vocabulary merges by piece score, ties by the halves' ids", "[tokenizer][gguf]") {
  // Pieces: "ab" (score -1), "▁a" (-2), "▁ab" (-3, reachable as ▁+ab or ▁a+b). "ab▁ab" merges a+b twice (best
  // score), then ▁+ab (the earlier of the two -3 merges by left id): [ab, ▁ab].
  GgufBuilder b;
  b.kv_string("tokenizer.ggml.model", "llama");
  b.kv_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "ab", "\xE2\x96\x81" "a",
                                         "\xE2\x96\x81" "ab", "<0x21>"});
  b.kv_f32s("tokenizer.ggml.scores", {0, 0, 0, -5, -5, -5, -1, -2, -3, 0});
  b.kv_i32s("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1, 1, 6});
  b.kv_u32("tokenizer.ggml.bos_token_id", 1).kv_u32("tokenizer.ggml.eos_token_id", 2);
  b.kv_u32("tokenizer.ggml.unknown_token_id", 0);
  b.kv_bool("tokenizer.ggml.add_space_prefix", false);
  const auto tok = from_image(b.build(), "lcllm_spm.gguf");
  CHECK(tok->encode("ab ab", false) == std::vector<int32_t>{6, 8});
  CHECK(tok->encode("ab ab", true) == std::vector<int32_t>{1, 6, 8});  // add_bos defaults to true for llama
  CHECK(tok->encode("!", false) == std::vector<int32_t>{9});           // byte fallback
  CHECK(tok->decode(std::vector<int32_t>{6, 8, 9}, false) == "ab ab!");
  CHECK(tok->encode("<s>", false) == std::vector<int32_t>{1});         // control tokens are special added tokens
  CHECK(tok->bos_token() == "<s>");
}

TEST_CASE("a gpt2 GGUF vocabulary is byte-level BPE with its stored merges", "[tokenizer][gguf]") {
  GgufBuilder b;
  b.kv_string("tokenizer.ggml.model", "gpt2");
  b.kv_strings("tokenizer.ggml.tokens", {"<|endoftext|>", "h", "i", "\xC4\xA0", "hi", "\xC4\xA0hi"});
  b.kv_strings("tokenizer.ggml.merges", {"h i", "\xC4\xA0 hi"});
  b.kv_i32s("tokenizer.ggml.token_type", {3, 1, 1, 1, 1, 1});
  b.kv_u32("tokenizer.ggml.eos_token_id", 0);
  b.kv_string("tokenizer.chat_template", "{{ messages[0]['content'] }}");
  const auto tok = from_image(b.build(), "lcllm_gpt2.gguf");
  CHECK(tok->encode("hi hi", false) == std::vector<int32_t>{4, 5});
  CHECK(tok->encode("hi hi", true) == std::vector<int32_t>{4, 5});  // gpt2: no BOS unless the file asks
  CHECK(tok->encode("<|endoftext|>", false) == std::vector<int32_t>{0});
  CHECK(tok->decode(std::vector<int32_t>{4, 5}, false) == "hi hi");
  CHECK(tok->chat_template() == "{{ messages[0]['content'] }}");
  // Broken metadata is a message naming the key.
  GgufBuilder no_merges;
  no_merges.kv_string("tokenizer.ggml.model", "gpt2").kv_strings("tokenizer.ggml.tokens", {"a"});
  CHECK_THROWS_WITH(from_image(no_merges.build(), "lcllm_gpt2_bad.gguf"), Catch::Contains("tokenizer.ggml.merges"));
  GgufBuilder bert;
  bert.kv_string("tokenizer.ggml.model", "bert").kv_strings("tokenizer.ggml.tokens", {"a"});
  CHECK_THROWS_WITH(from_image(bert.build(), "lcllm_bert.gguf"), Catch::Contains("model 'bert' is not supported"));
}

TEST_CASE("Gemma 3's GGUF tokenizer equals its tokenizer.json on the reference corpus", "[tokenizer][gguf][real]") {
  const std::string path = gguf_model_file("gemma-3-270m-q4_k_m.gguf");
  if (path.empty()) {
    WARN("skipped: gemma-3-270m-q4_k_m.gguf not found (run tools/fetch_models.sh)");
    return;
  }
  check_against(*Tokenizer::load(path), ref_cases("gemma3"), "gemma3 GGUF");
}

TEST_CASE("SmolLM2's GGUF tokenizer equals transformers' tokenizer for the same file", "[tokenizer][gguf][real]") {
  const std::string path = gguf_model_file("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (path.empty()) {
    WARN("skipped: SmolLM2-135M-Instruct.Q4_1.gguf not found (run tools/fetch_models.sh)");
    return;
  }
  check_against(*Tokenizer::load(path), ref_cases("smollm2_gguf"), "smollm2 GGUF");
}
