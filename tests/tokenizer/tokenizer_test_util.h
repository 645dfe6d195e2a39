// Shared helpers for the tokenizer tests: the four real tokenizers (each loaded once per test binary) and their
// committed reference corpora (tests/fixtures/tokenizer/<name>.jsonl, made by tools/make_tokenizer_refs.py).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lcllm::test {

struct RefCase {
  std::string text;
  std::vector<int32_t> ids, ids_special;
  std::string decoded, decoded_skip;
  bool roundtrip = false;
  std::vector<int32_t> spm_ids;  // llama2 only
  std::string spm_decoded;
};

inline const char* const kTokenizerNames[] = {"llama2", "llama3", "qwen3", "gemma3"};

// The tokenizer in ../shared/assets/tokenizers/<name>/ (tokenizer.json), loaded on first use.
const Tokenizer& real_tokenizer(const std::string& name);
// llama2's tokenizer.model through libsentencepiece.
const Tokenizer& llama2_spm();
const std::vector<RefCase>& ref_cases(const std::string& name);

std::string show_ids(const std::vector<int32_t>& ids);
std::string escape(const std::string& s);

}  // namespace lcllm::test
