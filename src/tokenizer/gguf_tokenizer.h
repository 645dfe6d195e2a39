// Tokenizers from GGUF metadata (E10 item 4): the tokenizer.json (Hugging Face `tokenizers` format) a GGUF file's
// `tokenizer.ggml.*` keys stand for, so that the one HF tokenizer implementation runs it:
//   - `gpt2` (byte-level BPE): vocab and merges as stored, a ByteLevel pre-tokenizer and decoder;
//   - `llama` (SentencePiece BPE with scores, e.g. Gemma 3, Llama 2): merges rebuilt from the scores the way
//     transformers converts a SentencePiece model (every split of a piece into two vocabulary pieces, ordered by the
//     piece's score, ties by the halves' ids), "▁" for spaces, byte fallback when the vocabulary has <0xXX> pieces.
// Control tokens (token_type 3) become special added tokens, user-defined ones (4) plain added tokens; bos/eos, the
// add_bos/add_eos flags and the chat template go to TokenizerConfig.
#pragma once
#include <string>

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace lcllm {

struct GgufTokenizerSource {
  std::string tokenizer_json;  // a complete tokenizer.json
  TokenizerConfig config;
};

// Throws lcllm::Error naming the file and key for missing or inconsistent tokenizer metadata, and
// ERROR_KIND_UNSUPPORTED for tokenizer models other than gpt2 and llama.
GgufTokenizerSource gguf_tokenizer_source(const GgufFile& file);

}  // namespace lcllm
