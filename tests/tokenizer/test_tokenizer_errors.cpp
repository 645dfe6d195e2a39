// Malformed tokenizer files give one clear lcllm::Error naming the file and the problem; invalid UTF-8 input is
// repaired (U+FFFD per maximal invalid subsequence, like Rust's from_utf8_lossy) before encoding.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "lcllm/error.h"
#include "tokenizer/unicode_util.h"
#include "tokenizer_test_util.h"

using namespace lcllm;
using namespace lcllm::test;
namespace fs = std::filesystem;

namespace {
// A minimal valid byte-fallback BPE tokenizer.json with `patch` spliced into the model object.
std::string tiny_json(const std::string& vocab, const std::string& merges, const std::string& extra = "") {
  return R"({"version":"1.0","added_tokens":[{"id":0,"content":"<unk>","special":true}],)"
         R"("normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,)"
         R"("model":{"type":"BPE","unk_token":"<unk>","byte_fallback":true,"vocab":)" + vocab +
         R"(,"merges":)" + merges + extra + "}}";
}

fs::path write_temp(const std::string& name, const std::string& content) {
  const fs::path dir = fs::temp_directory_path() / ("lcllm_tok_test_" + std::to_string(::getpid())) / name;
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer.json", std::ios::binary) << content;
  return dir;
}

std::string load_error(const std::string& name, const std::string& content) {
  const fs::path dir = write_temp(name, content);
  try {
    Tokenizer::load(dir.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("a minimal tokenizer.json loads and encodes", "[tokenizer][errors]") {
  auto tok = Tokenizer::from_json(tiny_json(R"({"<unk>":0,"a":1,"b":2,"ab":3})", R"(["a b"])"));
  CHECK(tok->encode("abab", false) == std::vector<int32_t>{3, 3});
  CHECK(tok->encode("c", false) == std::vector<int32_t>{0});  // no byte tokens: unk
  auto arr = Tokenizer::from_json(tiny_json(R"({"<unk>":0,"a":1,"b":2,"ab":3})", R"([["a","b"]])"));
  CHECK(arr->encode("ab", false) == std::vector<int32_t>{3});
}

TEST_CASE("malformed tokenizer.json files give clear errors", "[tokenizer][errors]") {
  struct Case { const char* name; std::string json; const char* expect; };
  const std::vector<Case> cases = {
      {"not_json", "{\"model\": ", "not valid JSON"},
      {"no_model", "{\"version\":\"1.0\"}", "missing field \"model\""},
      {"merge_unknown", tiny_json(R"({"<unk>":0,"a":1,"b":2,"ab":3})", R"(["a zz"])"), "\"zz\" is not in the vocabulary"},
      {"merge_result_unknown", tiny_json(R"({"<unk>":0,"a":1,"b":2})", R"(["a b"])"), "merged token \"ab\""},
      {"merge_no_space", tiny_json(R"({"<unk>":0,"a":1})", R"(["ab"])"), "exactly one space"},
      {"merge_wrong_type", tiny_json(R"({"<unk>":0,"a":1})", R"([1])"), "merges[0]"},
      {"negative_id", tiny_json(R"({"<unk>":0,"a":-5})", "[]"), "out of range"},
      {"huge_id", tiny_json(R"({"<unk>":0,"a":2000000000})", "[]"), "out of range"},
      {"duplicate_id", tiny_json(R"({"<unk>":0,"a":1,"b":1})", "[]"), "duplicate id 1"},
      {"bad_byte_token", tiny_json(R"({"<unk>":0,"<0x-1>":1})", "[]"), "malformed byte token"},
      {"unk_missing", tiny_json(R"({"a":1})", "[]"), "\"<unk>\""},
      {"string_id", tiny_json(R"({"<unk>":0,"a":"1"})", "[]"), "not an integer"},
      {"unknown_model", R"({"model":{"type":"Unigram","vocab":[]}})", "not supported"},
      {"bad_regex", R"({"pre_tokenizer":{"type":"Split","pattern":{"Regex":"(["},"behavior":"Isolated"},)"
                    R"("model":{"type":"BPE","vocab":{"a":0},"merges":[]}})", "does not compile"},
      {"added_id_conflict", R"({"added_tokens":[{"id":0,"content":"<x>","special":true}],)"
                            R"("model":{"type":"BPE","vocab":{"a":0},"merges":[]}})", "duplicate id 0"},
      {"template_bad_id", R"({"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>"}},)"
                          R"({"Sequence":{"id":"A"}}],"special_tokens":{"<s>":{"id":"<s>","ids":[99],"tokens":["<s>"]}}},)"
                          R"("model":{"type":"BPE","vocab":{"a":0},"merges":[]}})", "id 99 out of range"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const std::string msg = load_error(c.name, c.json);
    INFO(msg);
    CHECK(msg.find(c.expect) != std::string::npos);
    CHECK(msg.find("tokenizer.json") != std::string::npos);  // the message names the file
  }
}

TEST_CASE("missing tokenizer files give clear errors", "[tokenizer][errors]") {
  auto msg_of = [](const std::string& p) -> std::string {
    try {
      Tokenizer::load(p);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  CHECK(msg_of("/nonexistent/dir").find("no such tokenizer") != std::string::npos);
  const fs::path empty = fs::temp_directory_path() / ("lcllm_tok_empty_" + std::to_string(::getpid()));
  fs::create_directories(empty);
  CHECK(msg_of(empty.string()).find("neither tokenizer.json nor tokenizer.model") != std::string::npos);
  std::ofstream(empty / "tokenizer.model", std::ios::binary) << "garbage";
  CHECK(msg_of(empty.string()).find("not a valid SentencePiece model") != std::string::npos);
  std::ofstream(empty / "tokenizer_config.json") << "{\"bos_token\": 5}";
  CHECK(msg_of(empty.string()).find("tokenizer_config.json: bos_token") != std::string::npos);
}

TEST_CASE("invalid UTF-8 input is encoded as if each bad sequence were U+FFFD", "[tokenizer][utf8]") {
  CHECK(utf8_lossy("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(utf8_lossy("\xE6\x88") == "\xEF\xBF\xBD");            // truncated: one replacement
  CHECK(utf8_lossy("\xE6\x88z") == "\xEF\xBF\xBDz");
  CHECK(utf8_lossy("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate: byte by byte
  CHECK(utf8_lossy("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  CHECK(utf8_lossy("\xF4\x90\x80\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // > U+10FFFF
  for (const char* name : kTokenizerNames) {
    const Tokenizer& tok = real_tokenizer(name);
    INFO(name);
    const std::string bad = "caf\xC3 ok \xFF\xFE end \xF0\x9F\x98";
    CHECK(tok.encode(bad, false) == tok.encode(utf8_lossy(bad), false));
    CHECK(tok.encode(bad, true) == tok.encode(utf8_lossy(bad), true));
  }
  CHECK(llama2_spm().encode("x\xFFy", false) == llama2_spm().encode("x\xEF\xBF\xBDy", false));
}

TEST_CASE("special token ids, stop ids and vocabulary queries", "[tokenizer]") {
  const Tokenizer& l3 = real_tokenizer("llama3");
  CHECK(l3.vocab_size() == 128256);
  CHECK(l3.bos_id() == 128000);
  CHECK(l3.eos_id() == 128001);
  CHECK(l3.token_id("<|eot_id|>") == 128009);
  CHECK(std::find(l3.stop_ids().begin(), l3.stop_ids().end(), 128009) != l3.stop_ids().end());
  CHECK(l3.bos_token() == "<|begin_of_text|>");
  CHECK(!l3.chat_template().empty());
  CHECK(l3.is_special(128009));
  CHECK(!l3.is_special(100));
  CHECK(l3.decode(std::vector<int32_t>{128009, 9906}, true) == "Hello");
  CHECK(l3.decode(std::vector<int32_t>{-1, 9906, 999999}, false) == "Hello");  // unknown ids are skipped

  const Tokenizer& q = real_tokenizer("qwen3");
  CHECK(q.eos_id() == q.token_id("<|im_end|>"));
  CHECK(!q.bos_id());
  CHECK(std::find(q.stop_ids().begin(), q.stop_ids().end(), *q.token_id("<|endoftext|>")) != q.stop_ids().end());

  const Tokenizer& g = real_tokenizer("gemma3");
  CHECK(g.vocab_size() == 262145);
  CHECK(g.bos_id() == 2);
  CHECK(g.eos_id() == 106);  // <end_of_turn>, as tokenizer_config.json says
  CHECK(std::find(g.stop_ids().begin(), g.stop_ids().end(), 1) != g.stop_ids().end());  // <eos>
  CHECK(g.token_text(2) == "<bos>");
  CHECK(g.token_text(-3).empty());

  const Tokenizer& l2 = real_tokenizer("llama2");
  CHECK(l2.bos_id() == 1);
  CHECK(l2.eos_id() == 2);
  CHECK(l2.encode("Hello", true) == std::vector<int32_t>{1, 22557});
  // The shipped tokenizer.model numbers its pieces differently from tokenizer.json (see the assets README).
  CHECK(llama2_spm().encode("Hello", true) == std::vector<int32_t>{1, 15043});
  CHECK(llama2_spm().vocab_size() == 32000);
  CHECK(llama2_spm().token_id("▁Hello") == 15043);
  CHECK(!llama2_spm().token_id("no such piece"));
}

TEST_CASE("the fuzz seed tokenizers load, encode and round-trip", "[tokenizer][fuzzseeds]") {
  const fs::path dir = fs::path(LCLLM_SOURCE_DIR) / "tests/fuzz/corpus/tokenizer";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".json") continue;
    INFO(e.path().string());
    std::ifstream f(e.path(), std::ios::binary);
    const std::string json((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto tok = Tokenizer::from_json(json, e.path().string());
    const auto ids = tok->encode("hello world", false);
    CHECK(!ids.empty());
    CHECK(tok->decode(ids, false).find("hello") != std::string::npos);
    ++n;
  }
  CHECK(n >= 5);
}

TEST_CASE("Metaspace pre-tokenizer with prepend_scheme first only prefixes the start of the input", "[tokenizer]") {
  const std::string json = R"({"added_tokens":[{"id":0,"content":"<s>","special":true}],
    "pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true},
    "decoder":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true},
    "model":{"type":"BPE","vocab":{"<s>":0,"▁":1,"a":2,"b":3,"▁a":4,"▁b":5},"merges":["▁ a","▁ b"]}})";
  auto tok = Tokenizer::from_json(json);
  CHECK(tok->encode("a b", false) == std::vector<int32_t>{4, 5});
  CHECK(tok->encode("<s>a b", false) == std::vector<int32_t>{0, 2, 5});  // no prefix after an added token
  CHECK(tok->decode(std::vector<int32_t>{4, 5}, false) == "a b");
}
