// Text <-> token ids. One interface, two implementations: Hugging Face tokenizer.json (BPE, byte-level or
// SentencePiece-style) and SentencePiece tokenizer.model (through libsentencepiece).
//
// Behaviour follows the Hugging Face `tokenizers` library: encode(text, add_special_tokens) splits added/special
// tokens out of the text first, then normalizes, pre-tokenizes and runs the model on the rest, and applies the
// post-processor's BOS/EOS template only when add_special_tokens is true. Invalid UTF-8 in the input is not an
// error: every maximal invalid byte subsequence is replaced by U+FFFD first (as Rust's from_utf8_lossy does).
// decode() silently skips ids outside the vocabulary, as HF does.
//
// Instances are immutable after load() except for an internal, mutex-guarded word cache, so one tokenizer may be
// shared between threads.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lcllm {

// What tokenizer_config.json says (all optional).
struct TokenizerConfig {
  std::string chat_template;
  std::string bos_token;  // e.g. "<|begin_of_text|>"; empty when unknown
  std::string eos_token;
  std::optional<bool> add_bos_token, add_eos_token;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // A model directory (tokenizer.json preferred, else tokenizer.model; tokenizer_config.json optional) or a
  // direct path to a tokenizer.json / tokenizer.model file. Throws lcllm::Error naming the file and the problem.
  static std::unique_ptr<Tokenizer> load(const std::string& dir_or_file);
  // True when load(model_path) finds a tokenizer: a GGUF file (its metadata holds one), or a directory with
  // tokenizer.json or tokenizer.model.
  static bool available(const std::string& model_path);
  // A tokenizer.json held in memory (`origin` names it in error messages). Used by tests and the fuzz target.
  static std::unique_ptr<Tokenizer> from_json(std::string_view json_text, const std::string& origin = "<memory>",
                                              const TokenizerConfig& config = {});

  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;
  // encode(), but gives up as soon as the text is known to need more than max_tokens ids (std::nullopt), so that
  // the server refuses an over-long prompt for the cost of max_tokens ids, not of the whole text (E12 item 3).
  // The default encodes everything (libsentencepiece encodes in one call); the HF tokenizer stops early.
  virtual std::optional<std::vector<int32_t>> encode_at_most(std::string_view text, bool add_special_tokens,
                                                             size_t max_tokens) const {
    std::vector<int32_t> ids = encode(text, add_special_tokens);
    if (ids.size() > max_tokens) return std::nullopt;
    return ids;
  }
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;

  // Number of ids (model vocabulary plus added tokens): every valid id is < vocab_size().
  virtual int32_t vocab_size() const = 0;
  // The token's string as stored in the vocabulary (byte-level or "▁" form); empty for an unknown id.
  virtual std::string token_text(int32_t id) const = 0;
  virtual std::optional<int32_t> token_id(std::string_view token) const = 0;
  // True for special (control) tokens: the ones decode(..., skip_special_tokens=true) drops.
  virtual bool is_special(int32_t id) const = 0;

  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  // eos plus the end-of-turn tokens the vocabulary has (<|eot_id|>, <|eom_id|>, <end_of_turn>, <|im_end|>, ...).
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }
  // From tokenizer_config.json; may be empty.
  const std::string& chat_template() const { return config_.chat_template; }
  // BOS/EOS strings for chat templates ("" when unknown).
  std::string bos_token() const { return bos_id_ ? token_text(*bos_id_) : std::string(); }
  std::string eos_token() const { return eos_id_ ? token_text(*eos_id_) : std::string(); }

 protected:
  // Called by the loaders once the vocabulary is in place: resolves bos/eos/stop ids from the config or
  // from well-known token names.
  void finish_setup(const TokenizerConfig& config, std::optional<int32_t> default_bos,
                    std::optional<int32_t> default_eos);

  TokenizerConfig config_;
  std::optional<int32_t> bos_id_, eos_id_;
  std::vector<int32_t> stop_ids_;
};

// Parses tokenizer_config.json (special token strings may be plain strings or {"content": ...} objects).
TokenizerConfig tokenizer_parse_config(std::string_view json_text, const std::string& origin);

}  // namespace lcllm
