// Normalizers, pre-tokenizers, decoders and post-processors of tokenizer.json (semantics of HF `tokenizers`).
#include <algorithm>
#include <array>
#include <cstring>

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/unicode_util.h"

namespace lcllm::hf {

namespace {
struct ByteLevelTables {
  std::array<std::string, 256> chars;
  std::unordered_map<uint32_t, int> back;
  ByteLevelTables() {
    // GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100.. in byte order.
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = keep ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      utf8_append(chars[static_cast<std::size_t>(b)], cp);
      back[cp] = b;
    }
  }
};
const ByteLevelTables& byte_tables() {
  static const ByteLevelTables t;
  return t;
}

void replace_all(std::string& s, const Pattern& p, std::string_view with) {
  std::vector<std::pair<std::size_t, std::size_t>> m;
  p.find_all(s, m);
  if (m.empty()) return;
  std::string out;
  out.reserve(s.size() + m.size() * with.size());
  std::size_t last = 0;
  for (auto [a, b] : m) {
    out.append(s, last, a - last);
    out.append(with);
    last = b;
  }
  out.append(s, last, std::string::npos);
  s.swap(out);
}

bool is_unicode_space(uint32_t cp) {
  return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// Splits `piece` at `matches` with HF's SplitDelimiterBehavior; appends non-empty pieces to `out`.
void split_piece(const Piece& piece, std::vector<std::pair<std::size_t, std::size_t>>& matches,
                 SplitBehavior behavior, bool invert, std::vector<Piece>& out) {
  struct Span { std::size_t a, b; bool is_match; };
  std::vector<Span> spans;
  std::size_t last = 0;
  for (auto [a, b] : matches) {
    if (a > last) spans.push_back({last, a, invert});
    spans.push_back({a, b, !invert});
    last = b;
  }
  if (last < piece.text.size()) spans.push_back({last, piece.text.size(), invert});
  std::vector<Span> res;
  res.reserve(spans.size());
  switch (behavior) {
    case SPLIT_REMOVED:
      for (auto& s : spans) if (!s.is_match) res.push_back(s);
      break;
    case SPLIT_ISOLATED:
      res.swap(spans);
      break;
    case SPLIT_MERGED_WITH_PREVIOUS: {
      bool prev = false;
      for (auto& s : spans) {
        if (s.is_match && !prev && !res.empty()) res.back().b = s.b;
        else res.push_back(s);
        prev = s.is_match;
      }
      break;
    }
    case SPLIT_MERGED_WITH_NEXT: {
      bool prev = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !prev && !res.empty()) res.back().a = it->a;
        else res.push_back(*it);
        prev = it->is_match;
      }
      std::reverse(res.begin(), res.end());
      break;
    }
    case SPLIT_CONTIGUOUS: {
      bool prev = false;
      for (auto& s : spans) {
        if (s.is_match == prev && !res.empty()) res.back().b = s.b;
        else res.push_back(s);
        prev = s.is_match;
      }
      break;
    }
  }
  for (auto& s : res) {
    if (s.b > s.a) out.push_back(Piece{piece.text.substr(s.a, s.b - s.a), piece.at_start && s.a == 0});
  }
}
}  // namespace

const std::string& byte_level_char(unsigned char b) { return byte_tables().chars[b]; }
int byte_level_byte(uint32_t cp) {
  const auto& m = byte_tables().back;
  auto it = m.find(cp);
  return it == m.end() ? -1 : it->second;
}

void Pattern::find_all(std::string_view s, std::vector<std::pair<std::size_t, std::size_t>>& out) const {
  if (regex) {
    regex->find_all(s, out);
    return;
  }
  if (literal.empty()) return;
  for (std::size_t pos = s.find(literal); pos != std::string_view::npos; pos = s.find(literal, pos)) {
    out.emplace_back(pos, pos + literal.size());
    pos += literal.size();
  }
}

// ---- normalizers -----------------------------------------------------------------------------
void Normalizer::apply(std::string& s) const {
  switch (kind) {
    case NORMALIZER_SEQUENCE:
      for (const auto& c : children) c.apply(s);
      break;
    case NORMALIZER_PREPEND:
      if (!s.empty()) s.insert(0, content);
      break;
    case NORMALIZER_REPLACE:
      replace_all(s, *pattern, content);
      break;
    case NORMALIZER_NFC:
      s = unicode_nfc(s);
      break;
    case NORMALIZER_LOWERCASE:
      // Not produced by the loader (HF lowercases all of Unicode); kept for completeness of the switch.
      for (char& ch : s) if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
      break;
    case NORMALIZER_STRIP: {
      std::size_t a = 0, b = s.size();
      if (strip_left) {
        while (a < b) {
          std::size_t i = a;
          if (!is_unicode_space(utf8_next(s, i))) break;
          a = i;
        }
      }
      if (strip_right) {
        while (b > a) {
          std::size_t start = b - 1;
          while (start > a && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
          std::size_t i = start;
          if (!is_unicode_space(utf8_next(s, i))) break;
          b = start;
        }
      }
      s = s.substr(a, b - a);
      break;
    }
  }
}

// ---- pre-tokenizers --------------------------------------------------------------------------
void PreTokenizer::apply(std::vector<Piece>& pieces) const {
  std::vector<std::pair<std::size_t, std::size_t>> m;
  switch (kind) {
    case PRETOK_SEQUENCE:
      for (const auto& c : children) c.apply(pieces);
      return;
    case PRETOK_SPLIT: {
      std::vector<Piece> out;
      out.reserve(pieces.size() * 4);
      for (const auto& p : pieces) {
        m.clear();
        pattern->find_all(p.text, m);
        split_piece(p, m, behavior, invert, out);
      }
      pieces.swap(out);
      return;
    }
    case PRETOK_DIGITS: {
      std::vector<Piece> out;
      for (const auto& p : pieces) {
        m.clear();
        const std::string& t = p.text;
        for (std::size_t i = 0; i < t.size();) {
          if (t[i] >= '0' && t[i] <= '9') {
            std::size_t j = i + 1;
            if (!individual_digits) while (j < t.size() && t[j] >= '0' && t[j] <= '9') ++j;
            m.emplace_back(i, j);
            i = j;
          } else {
            ++i;
          }
        }
        split_piece(p, m, individual_digits ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS, false, out);
      }
      pieces.swap(out);
      return;
    }
    case PRETOK_METASPACE: {
      std::vector<Piece> out;
      for (auto& p : pieces) {
        std::string t;
        t.reserve(p.text.size() + replacement.size());
        for (char ch : p.text) {
          if (ch == ' ') t += replacement;
          else t.push_back(ch);
        }
        const bool starts = t.compare(0, replacement.size(), replacement) == 0;
        if (!starts && (prepend_scheme == PREPEND_ALWAYS || (prepend_scheme == PREPEND_FIRST && p.at_start)))
          t.insert(0, replacement);
        Piece np{std::move(t), p.at_start};
        if (split) {
          m.clear();
          for (std::size_t pos = np.text.find(replacement); pos != std::string::npos;
               pos = np.text.find(replacement, pos + replacement.size()))
            m.emplace_back(pos, pos + replacement.size());
          split_piece(np, m, SPLIT_MERGED_WITH_NEXT, false, out);
        } else {
          out.push_back(std::move(np));
        }
      }
      pieces.swap(out);
      return;
    }
    case PRETOK_BYTE_LEVEL: {
      std::vector<Piece> split_out;
      std::vector<Piece>* src = &pieces;
      if (add_prefix_space || use_regex) {
        for (auto& p : pieces) {
          if (add_prefix_space && (p.text.empty() || p.text[0] != ' ')) p.text = std::string(1, ' ') + p.text;
          if (use_regex) {
            m.clear();
            byte_level_regex->find_all(p.text, m);
            split_piece(p, m, SPLIT_ISOLATED, false, split_out);
          }
        }
        if (use_regex) src = &split_out;
      }
      const auto& tab = byte_tables().chars;
      for (auto& p : *src) {
        std::string t;
        t.reserve(p.text.size() * 2);
        for (char ch : p.text) t += tab[static_cast<unsigned char>(ch)];
        p.text.swap(t);
      }
      if (src != &pieces) pieces.swap(split_out);
      return;
    }
  }
}

// ---- decoders --------------------------------------------------------------------------------
void Decoder::apply(std::vector<std::string>& tokens) const {
  switch (kind) {
    case DECODER_SEQUENCE:
      for (const auto& c : children) c.apply(tokens);
      return;
    case DECODER_REPLACE:
      for (auto& t : tokens) replace_all(t, *pattern, content);
      return;
    case DECODER_FUSE: {
      std::string all;
      for (auto& t : tokens) all += t;
      tokens.assign(1, std::move(all));
      return;
    }
    case DECODER_BYTE_FALLBACK: {
      std::vector<std::string> out;
      out.reserve(tokens.size());
      std::string bytes;
      auto flush = [&] {
        if (bytes.empty()) return;
        if (utf8_is_valid(bytes)) out.push_back(bytes);
        else for (std::size_t i = 0; i < bytes.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
        bytes.clear();
      };
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      for (auto& t : tokens) {
        int v = -1;
        if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
          const int h = hex(t[3]), l = hex(t[4]);
          if (h >= 0 && l >= 0) v = h * 16 + l;
          else if (t[3] == '+' && l >= 0) v = l;  // Rust's from_str_radix accepts a leading '+'
        }
        if (v >= 0) {
          bytes.push_back(static_cast<char>(v));
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      tokens.swap(out);
      return;
    }
    case DECODER_STRIP:
      for (auto& t : tokens) {
        // Strip up to strip_start leading and strip_stop trailing copies of the (single-character) content.
        std::size_t a = 0, b = t.size();
        for (int i = 0; i < strip_start && a < b && t.compare(a, content.size(), content) == 0; ++i)
          a += content.size();
        for (int i = 0; i < strip_stop && b >= a + content.size() &&
                        t.compare(b - content.size(), content.size(), content) == 0; ++i)
          b -= content.size();
        t = t.substr(a, b - a);
      }
      return;
    case DECODER_METASPACE:
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        std::string out;
        const std::string& t = tokens[i];
        for (std::size_t pos = 0; pos < t.size();) {
          if (t.compare(pos, content.size(), content) == 0) {
            if (!(i == 0 && metaspace_prefix)) out.push_back(' ');
            pos += content.size();
          } else {
            out.push_back(t[pos++]);
          }
        }
        tokens[i].swap(out);
      }
      return;
    case DECODER_BYTE_LEVEL: {
      std::string bytes;
      for (const auto& t : tokens) {
        const std::size_t mark = bytes.size();
        bool ok = true;
        for (std::size_t i = 0; i < t.size();) {
          const std::size_t n = utf8_valid_len(t, i);
          if (n == 0) { ok = false; break; }
          std::size_t j = i;
          const int b = byte_level_byte(utf8_next(t, j));
          if (b < 0) { ok = false; break; }
          bytes.push_back(static_cast<char>(b));
          i = j;
        }
        if (!ok) {  // a token outside the byte alphabet passes through as its own UTF-8 bytes
          bytes.resize(mark);
          bytes += t;
        }
      }
      tokens.assign(1, utf8_lossy(bytes));
      return;
    }
  }
}

// ---- post-processors -------------------------------------------------------------------------
void PostProcessor::apply(std::vector<int32_t>& ids) const {
  switch (kind) {
    case POST_SEQUENCE:
      for (const auto& c : children) c.apply(ids);
      return;
    case POST_BYTE_LEVEL:
      return;  // only adjusts offsets
    case POST_BERT: {
      std::vector<int32_t> out(bert_cls);
      out.insert(out.end(), ids.begin(), ids.end());
      out.insert(out.end(), bert_sep.begin(), bert_sep.end());
      ids.swap(out);
      return;
    }
    case POST_TEMPLATE: {
      std::vector<int32_t> out;
      out.reserve(ids.size() + 4);
      for (const auto& it : single) {
        if (it.is_sequence) out.insert(out.end(), ids.begin(), ids.end());
        else out.insert(out.end(), it.ids.begin(), it.ids.end());
      }
      ids.swap(out);
      return;
    }
  }
}

// ---- added-token trie ------------------------------------------------------------------------
void AddedTokenTrie::insert(std::string_view s, int32_t token_index) {
  if (s.empty()) return;
  int32_t node = 0;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    auto& kids = nodes_[static_cast<std::size_t>(node)].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), c,
                               [](const std::pair<unsigned char, int32_t>& e, unsigned char v) { return e.first < v; });
    if (it != kids.end() && it->first == c) {
      node = it->second;
    } else {
      const auto next = static_cast<int32_t>(nodes_.size());
      kids.insert(it, {c, next});
      nodes_.emplace_back();
      node = next;
    }
  }
  first_[static_cast<unsigned char>(s[0])] = true;
  // A later duplicate keeps the first token (HF keeps one entry per content).
  if (nodes_[static_cast<std::size_t>(node)].token < 0) nodes_[static_cast<std::size_t>(node)].token = token_index;
}

int32_t AddedTokenTrie::match_at(std::string_view text, std::size_t pos, std::size_t& len) const {
  int32_t node = 0, best = -1;
  for (std::size_t i = pos; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const auto& kids = nodes_[static_cast<std::size_t>(node)].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), c,
                               [](const std::pair<unsigned char, int32_t>& e, unsigned char v) { return e.first < v; });
    if (it == kids.end() || it->first != c) break;
    node = it->second;
    if (nodes_[static_cast<std::size_t>(node)].token >= 0) {
      best = nodes_[static_cast<std::size_t>(node)].token;
      len = i + 1 - pos;
    }
  }
  return best;
}

}  // namespace lcllm::hf
