#include "tokenizer/spm_tokenizer.h"

#include <sentencepiece_processor.h>

#include "lcllm/error.h"
#include "tokenizer/unicode_util.h"

namespace lcllm {

SpmTokenizer::SpmTokenizer(const std::string& model_bytes, const std::string& origin, const TokenizerConfig& config)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const auto st = sp_->LoadFromSerializedProto(model_bytes);
  if (!st.ok())
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, origin + ": not a valid SentencePiece model: " + st.ToString());
  if (sp_->GetPieceSize() <= 0) throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, origin + ": empty vocabulary");
  add_bos_ = config.add_bos_token.value_or(true);
  add_eos_ = config.add_eos_token.value_or(false);
  auto valid = [&](int id) -> std::optional<int32_t> {
    if (id >= 0 && id < sp_->GetPieceSize()) return id;
    return std::nullopt;
  };
  finish_setup(config, valid(sp_->bos_id()), valid(sp_->eos_id()));
}

SpmTokenizer::~SpmTokenizer() = default;

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string repaired;
  if (!utf8_is_valid(text)) {
    repaired = utf8_lossy(text);
    text = repaired;
  }
  std::vector<int> pieces;
  const auto st = sp_->Encode(text, &pieces);
  if (!st.ok()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "sentencepiece encode failed: " + st.ToString());
  std::vector<int32_t> ids;
  ids.reserve(pieces.size() + 2);
  if (add_special_tokens && add_bos_ && bos_id_) ids.push_back(*bos_id_);
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  if (add_special_tokens && add_eos_ && eos_id_) ids.push_back(*eos_id_);
  return ids;
}

std::string SpmTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  // SentencePiece drops control tokens when decoding; unless skipping, they are written out as their piece text
  // between independently decoded runs of ordinary ids.
  std::string out, part;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    part.clear();
    const auto st = sp_->Decode(run, &part);
    if (!st.ok()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "sentencepiece decode failed: " + st.ToString());
    out += part;
    run.clear();
  };
  const int n = sp_->GetPieceSize();
  for (int32_t id : ids) {
    if (id < 0 || id >= n) continue;
    if (sp_->IsControl(id)) {
      if (skip_special_tokens) continue;
      flush();
      out += sp_->IdToPiece(id);
      continue;
    }
    run.push_back(id);
  }
  flush();
  return out;
}

int32_t SpmTokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::string SpmTokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= sp_->GetPieceSize()) return {};
  return sp_->IdToPiece(id);
}

std::optional<int32_t> SpmTokenizer::token_id(std::string_view token) const {
  const int id = sp_->PieceToId(token);
  if (id < 0 || id >= sp_->GetPieceSize() || sp_->IdToPiece(id) != token) return std::nullopt;
  return id;
}

bool SpmTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < sp_->GetPieceSize() && sp_->IsControl(id);
}

}  // namespace lcllm
