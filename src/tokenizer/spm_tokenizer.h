// SentencePiece tokenizer.model through libsentencepiece. Encoding is SentencePiece's own (special-token text
// in the input is not split out, exactly like the `sentencepiece` Python package); add_special_tokens prepends
// BOS / appends EOS as tokenizer_config.json's add_bos_token (default true) / add_eos_token (default false) say.
#pragma once
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace lcllm {

class SpmTokenizer final : public Tokenizer {
 public:
  SpmTokenizer(const std::string& model_bytes, const std::string& origin, const TokenizerConfig& config);
  ~SpmTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  int32_t vocab_size() const override;
  std::string token_text(int32_t id) const override;
  std::optional<int32_t> token_id(std::string_view token) const override;
  bool is_special(int32_t id) const override;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  bool add_bos_ = true, add_eos_ = false;
};

}  // namespace lcllm
