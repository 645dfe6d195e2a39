#include "eval/haystack_text.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "lcllm/error.h"

namespace lcllm {

namespace {

constexpr size_t kMaxSentenceBytes = 400;
constexpr uint64_t kMaxHaystackBytes = 64ull << 20;
constexpr size_t kMinSentences = 20;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool closes(char c) { return c == '"' || c == '\'' || c == ')' || c == ']'; }

// Appends `s` (already single-spaced, trimmed) to `out`, split at spaces into pieces of at most kMaxSentenceBytes.
void push_sentence(std::vector<std::string>& out, std::string s) {
  while (s.size() > kMaxSentenceBytes) {
    size_t cut = s.rfind(' ', kMaxSentenceBytes);
    if (cut == std::string::npos || cut == 0) cut = kMaxSentenceBytes;  // one unbroken word: cut inside it
    out.push_back(s.substr(0, cut));
    const size_t rest = s[cut] == ' ' ? cut + 1 : cut;
    s.erase(0, rest);
  }
  if (!s.empty()) out.push_back(std::move(s));
}

}  // namespace

std::vector<std::string> haystack_sentences(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  size_t newlines = 0;  // newlines in the whitespace run being read
  bool in_space = false;
  auto end_sentence = [&] {
    while (!cur.empty() && cur.back() == ' ') cur.pop_back();
    push_sentence(out, std::move(cur));
    cur.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (is_space(c)) {
      if (!in_space) newlines = 0;
      in_space = true;
      newlines += c == '\n';
      continue;
    }
    if (in_space) {
      // A blank line ends a sentence (a heading, a list item); other whitespace runs become one space.
      if (newlines >= 2) {
        end_sentence();
      } else if (!cur.empty()) {
        // Sentence end: ".", "!" or "?", possibly followed by closing quotes/brackets, then whitespace.
        size_t k = cur.size();
        while (k > 0 && closes(cur[k - 1])) --k;
        if (k > 0 && (cur[k - 1] == '.' || cur[k - 1] == '!' || cur[k - 1] == '?')) {
          end_sentence();
        } else {
          cur += ' ';
        }
      }
      in_space = false;
    }
    cur += c;
  }
  end_sentence();
  return out;
}

void eval_text_use_haystack(EvalText& text, const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, "--haystack: '" + path + "' is not a file");
  }
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorKind::ERROR_KIND_IO, "--haystack: cannot read the size of '" + path + "'");
  if (size > kMaxHaystackBytes) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, "--haystack: '" + path + "' has " + std::to_string(size) +
                                                        " bytes; the limit is 64 MiB (a 1M-token prompt needs ~4 MiB)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::ERROR_KIND_IO, "--haystack: cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::vector<std::string> sentences = haystack_sentences(ss.str());
  if (sentences.size() < kMinSentences) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE,
                "--haystack: '" + path + "' has " + std::to_string(sentences.size()) + " sentences; at least " +
                    std::to_string(kMinSentences) + " are needed (use a longer text)");
  }
  text.filler = std::move(sentences);
  text.filler_in_order = true;
  text.source += ", haystack " + std::filesystem::path(path).filename().string();
}

}  // namespace lcllm
