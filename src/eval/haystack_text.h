// Natural text as a haystack (`eval niah|ruler --haystack FILE`, E10 item 7): a real model's long-context score
// depends on the filler, and the built-in filler is sentences written here. A text nobody here wrote (a license,
// a book, a code base's docs) is read as one passage of sentences in order, from a seeded start.
#pragma once
#include <string>
#include <vector>

#include "eval/eval_text.h"

namespace lcllm {

// Sentences of `text` in order: whitespace runs become one space; a sentence ends after '.', '!' or '?' (and any
// closing quotes or brackets) before whitespace, and at blank lines (headings, list items); a sentence longer than
// 400 bytes is split at the last space before 400 bytes, so the haystack builder's exact-fit search stays small.
std::vector<std::string> haystack_sentences(const std::string& text);

// Replaces `text`'s filler with the sentences of the file at `path` (read in order). Throws
// ERROR_KIND_NOT_FOUND / ERROR_KIND_IO / ERROR_KIND_INVALID_FILE naming the file: missing, unreadable, larger than
// 64 MiB, or with fewer than 20 sentences.
void eval_text_use_haystack(EvalText& text, const std::string& path);

}  // namespace lcllm
