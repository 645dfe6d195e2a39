// Streaming detokenization: feed generated ids one at a time, get text pieces that never split a UTF-8 character.
// The concatenation of all pieces (including finish()) equals tokenizer.decode(all ids, skip_special_tokens).
//
// Method (as vLLM / TGI do it): decode a short window of recent ids twice — without and with the new ids — and
// emit the suffix difference once the longer text does not end in U+FFFD (an incomplete UTF-8 sequence or an
// unfinished byte-fallback group). Both decodes start at the same token, so decoder effects that depend on the
// start (SentencePiece's leading-space strip) cancel out.
//
// Limitation: HF's ByteFallback decoder turns a whole run of <0xNN> tokens into U+FFFD per byte when the run is
// not valid UTF-8, so a stray continuation byte generated after an already emitted character changes how the
// full decode renders that character. Ids produced by encoding text never do this; model output could, and then
// the stream shows the character where the full decode shows U+FFFD.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lcllm {

class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens = true)
      : tok_(tokenizer), skip_special_(skip_special_tokens) {}

  // Adds one id; returns the text that became final (often empty while a character is incomplete).
  std::string push(int32_t id);
  // End of stream: the rest of the text (incomplete sequences come out as U+FFFD, as in the full decode).
  std::string finish();

  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  std::size_t prefix_offset_ = 0;  // window start
  std::size_t read_offset_ = 0;    // ids before this have been emitted
  std::size_t emitted_bytes_ = 0;
};

}  // namespace lcllm
