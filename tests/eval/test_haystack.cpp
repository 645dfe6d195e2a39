// Haystack construction: exact prompt length, needles whole, at the requested depth, at a sentence boundary, and
// token ids that are what the tokenizer gives for the decoded text. Run with a SentencePiece-style tokenizer
// (Llama 2, the default model's) and a byte-level BPE one (Llama 3).
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <catch2/catch.hpp>

#include "eval/eval_text.h"
#include "eval/haystack.h"
#include "eval/haystack_text.h"
#include "lcllm/error.h"

using namespace lcllm;

namespace {

const Tokenizer& tokenizer(const std::string& name) {
  static std::unique_ptr<Tokenizer> llama2, llama3;
  if (name == "llama2") {
    if (!llama2) llama2 = Tokenizer::load(std::string(LCLLM_SOURCE_DIR) + "/models/default");
    return *llama2;
  }
  if (!llama3) llama3 = Tokenizer::load(std::string(LCLLM_SHARED_DIR) + "/assets/tokenizers/llama3/tokenizer.json");
  return *llama3;
}

bool contains_at(const std::vector<int32_t>& ids, size_t pos, const std::vector<int32_t>& what) {
  return pos + what.size() <= ids.size() && std::equal(what.begin(), what.end(), ids.begin() + ptrdiff_t(pos));
}

}  // namespace

TEST_CASE("haystacks have the exact token length with the needle whole at a sentence boundary near its depth") {
  const std::string tok_name = GENERATE(std::string("llama2"), std::string("llama3"));
  const Tokenizer& tok = tokenizer(tok_name);
  const EvalText text = eval_text_defaults();
  HaystackBuilder builder(tok, text.filler);
  const std::string needle = "The secret code for apple is 482913.";
  const std::string query = "What is the secret code for apple? The secret code for apple is";
  for (int32_t length : {128, 256, 300, 1000, 4096}) {
    for (double depth : {0.0, 0.25, 0.5, 0.9, 1.0}) {
      INFO(tok_name << " length " << length << " depth " << depth);
      HaystackRequest req;
      req.total_tokens = length;
      req.inserts = {{needle, depth}};
      req.query = query;
      req.seed = uint64_t(length) * 31 + uint64_t(depth * 100);
      const Haystack h = builder.build(req);
      REQUIRE(int32_t(h.ids.size()) == length);
      // BOS first (as the tokenizer adds it), the query last.
      REQUIRE(h.ids.size() > builder.head().size());
      CHECK(std::equal(builder.head().begin(), builder.head().end(), h.ids.begin()));
      if (tok_name == "llama2") CHECK(builder.head() == std::vector<int32_t>{1});
      CHECK(contains_at(h.ids, size_t(h.query_pos), builder.encode_continuation(query)));
      CHECK(h.query_pos + int32_t(builder.encode_continuation(query).size()) == length);
      // The needle's ids, whole, where the builder says.
      REQUIRE(h.insert_pos.size() == 1);
      CHECK(contains_at(h.ids, size_t(h.insert_pos[0]), builder.encode_continuation(needle)));
      // At a sentence boundary: right after BOS or after a filler sentence that ends with '.'.
      const size_t p = size_t(h.insert_pos[0]);
      if (p > builder.head().size()) {
        const std::vector<int32_t> before(h.ids.begin(), h.ids.begin() + ptrdiff_t(p));
        const std::string text_before = tok.decode(before, true);
        CHECK(text_before.back() == '.');
      }
      // The depth: the last boundary at or before the target, so below it by less than one sentence (<= 16
      // tokens for this filler) and never above.
      const double target = depth * h.filler_tokens;
      const double actual = h.insert_depth[0] * h.filler_tokens;
      CHECK(actual <= target + 1e-6);
      CHECK(target - actual <= 16.0);
      CHECK(!h.cut_sentence);  // the built-in filler always closes the gap with whole sentences
      // The ids are the tokenizer's own for the decoded text.
      CHECK(tok.encode(tok.decode(h.ids, true), true) == h.ids);
    }
  }
}

TEST_CASE("haystack building is deterministic in the seed and rejects impossible lengths") {
  const Tokenizer& tok = tokenizer("llama2");
  const EvalText text = eval_text_defaults();
  HaystackBuilder builder(tok, text.filler);
  HaystackRequest req;
  req.total_tokens = 500;
  req.inserts = {{"The secret code for pear is 111111.", 0.5}};
  req.query = "What is the secret code for pear?";
  req.seed = 7;
  const Haystack a = builder.build(req), b = builder.build(req);
  CHECK(a.ids == b.ids);
  req.seed = 8;
  CHECK(builder.build(req).ids != a.ids);
  req.total_tokens = 20;  // needle + query alone are longer
  CHECK_THROWS_WITH(builder.build(req), Catch::Contains("cannot hold"));
}

TEST_CASE("several inserts keep request order at one boundary and land in depth order") {
  const Tokenizer& tok = tokenizer("llama2");
  const EvalText text = eval_text_defaults();
  HaystackBuilder builder(tok, text.filler);
  HaystackRequest req;
  req.total_tokens = 2000;
  req.inserts = {{"VAR AAAAA = 12345.", 0.1}, {"VAR BBBBB = VAR AAAAA.", 0.1}, {"VAR CCCCC = VAR BBBBB.", 0.7}};
  req.query = "Which variables?";
  const Haystack h = builder.build(req);
  REQUIRE(h.ids.size() == 2000);
  CHECK(h.insert_pos[0] < h.insert_pos[1]);
  CHECK(h.insert_pos[1] == h.insert_pos[0] + h.insert_len[0]);  // same boundary: back to back, in request order
  CHECK(h.insert_pos[1] < h.insert_pos[2]);
  CHECK(h.insert_depth[2] > 0.6);
}

TEST_CASE("a filler that cannot close the gap with whole sentences falls back to a token-level cut") {
  const Tokenizer& tok = tokenizer("llama2");
  // One long sentence only: most lengths cannot be hit with whole copies of it.
  HaystackBuilder builder(tok, {"The quick brown fox jumps over the lazy dog near the quiet river bank today."});
  HaystackRequest req;
  req.total_tokens = 301;
  req.query = "Where is the fox?";
  const Haystack h = builder.build(req);
  CHECK(h.ids.size() == 301);
  CHECK(h.cut_sentence);
}

TEST_CASE("natural text: sentences split at sentence ends and blank lines, long ones at spaces") {
  const auto s = haystack_sentences(
      "GNU GENERAL PUBLIC LICENSE\n   Version 3\n\nPreamble.  The licenses (\"GPL\") are free!\nYou may copy "
      "it.\" Quoted? Yes.\r\n\r\n  e.g. 3.5 is a number.");
  REQUIRE(s.size() == 8);
  CHECK(s[0] == "GNU GENERAL PUBLIC LICENSE Version 3");
  CHECK(s[1] == "Preamble.");
  CHECK(s[2] == "The licenses (\"GPL\") are free!");
  CHECK(s[3] == "You may copy it.\"");
  CHECK(s[4] == "Quoted?");
  CHECK(s[5] == "Yes.");
  CHECK(s[6] == "e.g.");  // abbreviations end a sentence: harmless for a haystack
  CHECK(s[7] == "3.5 is a number.");
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "word ";
  const auto parts = haystack_sentences(long_text);
  REQUIRE(parts.size() == 4);
  for (const auto& p : parts) CHECK(p.size() <= 400);
  CHECK(parts[0].back() == 'd');  // cut at a space, not inside a word
}

TEST_CASE("natural text is read in order: the haystack is one contiguous passage from a seeded start") {
  const Tokenizer& tok = tokenizer("llama3");
  std::vector<std::string> filler;
  for (int i = 0; i < 200; ++i) filler.push_back("Sentence number " + std::to_string(i) + " of the book.");
  HaystackBuilder builder(tok, filler, true);
  HaystackRequest req;
  req.total_tokens = 600;
  req.seed = 11;
  const Haystack h = builder.build(req);
  const std::string text = tok.decode(h.ids, true);
  // Sentences appear as a run of consecutive numbers (wrapping after 199), except the exact-fit tail.
  std::vector<int> numbers;
  for (size_t p = text.find("number "); p != std::string::npos; p = text.find("number ", p + 1)) {
    numbers.push_back(std::stoi(text.substr(p + 7)));
  }
  REQUIRE(numbers.size() > 20);
  size_t in_order = 0;
  for (size_t i = 1; i < numbers.size(); ++i) in_order += numbers[i] == (numbers[i - 1] + 1) % 200;
  CHECK(in_order + 3 >= numbers.size() - 1);
  CHECK(int32_t(h.ids.size()) == 600);
  // Another seed starts elsewhere.
  req.seed = 12;
  CHECK(tok.decode(builder.build(req).ids, true) != text);
}

TEST_CASE("--haystack files: missing, too short and good files") {
  EvalText t = eval_text_defaults();
  CHECK_THROWS_WITH(eval_text_use_haystack(t, "/nonexistent/book.txt"), Catch::Contains("is not a file"));
  const std::string path = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/lcllm_haystack_test.txt";
  {
    std::ofstream f(path);
    f << "One sentence. Two sentences.";
  }
  CHECK_THROWS_WITH(eval_text_use_haystack(t, path), Catch::Contains("has 2 sentences; at least 20"));
  CHECK(!t.filler_in_order);
  {
    std::ofstream f(path);
    for (int i = 0; i < 30; ++i) f << "This is sentence " << i << ".\n";
  }
  const uint64_t before = eval_text_fingerprint(t);
  eval_text_use_haystack(t, path);
  CHECK(t.filler.size() == 30);
  CHECK(t.filler_in_order);
  CHECK(t.filler[29] == "This is sentence 29.");
  CHECK(eval_text_fingerprint(t) != before);
  std::remove(path.c_str());
}
