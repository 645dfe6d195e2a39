#include "eval/longbench_metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>

#include "tokenizer/unicode_util.h"
#include "tokenizer/utf8_encode.h"

namespace lcllm {

namespace {

bool is_ascii_punct(unsigned char c) {  // Python's string.punctuation
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}
bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
// re's \w for str patterns, on code points: ASCII letters, digits and '_'; beyond ASCII every code point except
// the common punctuation and symbol blocks (Latin-1 punctuation, General Punctuation .. Misc Symbols, CJK
// punctuation, fullwidth ASCII punctuation), which approximates Python's Unicode word class for text LongBench has.
bool is_word_cp(uint32_t c) {
  if (c < 0x80) return std::isalnum(int(c)) || c == '_';
  if (c >= 0x80 && c <= 0xBF) return c == 0xAA || c == 0xB5 || c == 0xBA || c == 0xB2 || c == 0xB3 || c == 0xB9;
  if (c == 0xD7 || c == 0xF7) return false;
  if (c >= 0x2000 && c <= 0x2BFF) return false;
  if (c >= 0x3000 && c <= 0x303F) return false;
  if (c >= 0xFE30 && c <= 0xFE4F) return false;
  if ((c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) ||
      (c >= 0xFF5B && c <= 0xFF65)) {
    return false;
  }
  return true;
}

std::vector<std::string> split_ws(const std::string& s) {  // Python str.split()
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space((unsigned char)s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !is_space((unsigned char)s[j])) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<std::string> split_on(const std::string& s, char sep) {  // Python str.split(sep)
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    if (p == std::string::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, p - start));
    start = p + 1;
  }
}

std::u32string code_points(const std::string& s) {
  const std::string valid = utf8_lossy(s);
  std::u32string out;
  size_t i = 0;
  while (i < valid.size()) out.push_back(char32_t(utf8_next(valid, i)));
  return out;
}

// re.findall(r"\d+", text): maximal runs of ASCII digits.
std::vector<std::string> digit_runs(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    if (std::isdigit((unsigned char)text[i])) {
      size_t j = i;
      while (j < text.size() && std::isdigit((unsigned char)text[j])) ++j;
      out.push_back(text.substr(i, j - i));
      i = j;
    } else {
      ++i;
    }
  }
  return out;
}

// Share of numbers in `prediction` equal to `target` (0 when it has none).
double share_equal(const std::string& prediction, const std::string& target) {
  const auto nums = digit_runs(prediction);
  if (nums.empty()) return 0.0;
  double right = 0;
  for (const auto& n : nums) right += n == target ? 1.0 : 0.0;
  return right / double(nums.size());
}

// The digits after the first `marker` in `text` that is followed by at least one digit ("" when none).
std::string number_after(const std::string& text, const std::string& marker) {
  size_t p = 0;
  while ((p = text.find(marker, p)) != std::string::npos) {
    size_t j = p + marker.size();
    size_t k = j;
    while (k < text.size() && std::isdigit((unsigned char)text[k])) ++k;
    if (k > j) return text.substr(j, k - j);
    p += 1;
  }
  return "";
}

// Words of the `rouge` package: "." splits sentences (empty pieces dropped before whitespace is collapsed), each
// sentence is re-joined with single spaces and split at ' '.
std::vector<std::vector<std::string>> rouge_sentences(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  for (const auto& piece : split_on(text, '.')) {
    if (piece.empty()) continue;
    std::string joined;
    for (const auto& w : split_ws(piece)) joined += (joined.empty() ? "" : " ") + w;
    out.push_back(split_on(joined, ' '));
  }
  return out;
}

// The LCS of x and y as the words of x it uses, reconstructed as rouge_score._recon_lcs does (on a tie, step
// along y first).
std::vector<std::string> recon_lcs(const std::vector<std::string>& x, const std::vector<std::string>& y) {
  const size_t n = x.size(), m = y.size();
  std::vector<std::vector<int32_t>> t(n + 1, std::vector<int32_t>(m + 1, 0));  // [n+1][m+1] LCS lengths
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      t[i][j] = x[i - 1] == y[j - 1] ? t[i - 1][j - 1] + 1 : std::max(t[i - 1][j], t[i][j - 1]);
    }
  }
  std::vector<std::string> out;
  size_t i = n, j = m;
  while (i > 0 && j > 0) {
    if (x[i - 1] == y[j - 1]) {
      out.push_back(x[i - 1]);
      --i;
      --j;
    } else if (t[i - 1][j] > t[i][j - 1]) {
      --i;
    } else {
      --j;
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// difflib.SequenceMatcher's matching-block total for a vs b (with b's popular elements purged when len(b) >= 200).
size_t difflib_matches(const std::u32string& a, const std::u32string& b) {
  std::unordered_map<char32_t, std::vector<size_t>> b2j;  // element -> ascending positions in b
  for (size_t j = 0; j < b.size(); ++j) b2j[b[j]].push_back(j);
  if (b.size() >= 200) {  // autojunk: elements more frequent than 1% + 1 are "popular" and not indexed
    const size_t ntest = b.size() / 100 + 1;
    for (auto it = b2j.begin(); it != b2j.end();) {
      it = it->second.size() > ntest ? b2j.erase(it) : std::next(it);
    }
  }
  struct Block {
    size_t alo, ahi, blo, bhi;
  };
  size_t total = 0;
  std::vector<Block> queue{{0, a.size(), 0, b.size()}};
  while (!queue.empty()) {
    Block q = queue.back();
    queue.pop_back();
    // find_longest_match (no junk function, so the junk-extension loops of difflib never fire)
    size_t besti = q.alo, bestj = q.blo, bestsize = 0;
    std::unordered_map<size_t, size_t> j2len;
    for (size_t i = q.alo; i < q.ahi; ++i) {
      std::unordered_map<size_t, size_t> newj2len;
      auto it = b2j.find(a[i]);
      if (it != b2j.end()) {
        for (size_t j : it->second) {
          if (j < q.blo) continue;
          if (j >= q.bhi) break;
          auto prev = j > 0 ? j2len.find(j - 1) : j2len.end();
          const size_t k = (prev != j2len.end() ? prev->second : 0) + 1;
          newj2len[j] = k;
          if (k > bestsize) {
            besti = i - k + 1;
            bestj = j - k + 1;
            bestsize = k;
          }
        }
      }
      j2len = std::move(newj2len);
    }
    // Extend over equal elements next to the match (popular elements are not junk, so they extend).
    while (besti > q.alo && bestj > q.blo && a[besti - 1] == b[bestj - 1]) {
      --besti;
      --bestj;
      ++bestsize;
    }
    while (besti + bestsize < q.ahi && bestj + bestsize < q.bhi && a[besti + bestsize] == b[bestj + bestsize]) {
      ++bestsize;
    }
    if (bestsize == 0) continue;
    total += bestsize;
    if (q.alo < besti && q.blo < bestj) queue.push_back({q.alo, besti, q.blo, bestj});
    if (besti + bestsize < q.ahi && bestj + bestsize < q.bhi) {
      queue.push_back({besti + bestsize, q.ahi, bestj + bestsize, q.bhi});
    }
  }
  return total;
}

}  // namespace

std::string longbench_normalize_answer(const std::string& s) {
  std::string t;
  for (char c : s) {  // lower, then drop punctuation
    unsigned char u = (unsigned char)c;
    if (is_ascii_punct(u)) continue;
    t += (u >= 'A' && u <= 'Z') ? char(u - 'A' + 'a') : c;
  }
  // re.sub(r"\b(a|an|the)\b", " ", t), on code points
  const std::u32string u = code_points(t);
  auto word_at = [&](size_t k) { return k < u.size() && is_word_cp(uint32_t(u[k])); };
  std::string r;
  size_t i = 0;
  while (i < u.size()) {
    bool replaced = false;
    if (i == 0 || !word_at(i - 1)) {
      for (std::u32string_view w : {U"the", U"an", U"a"}) {
        if (u.compare(i, w.size(), w) == 0 && !word_at(i + w.size())) {
          r += ' ';
          i += w.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) utf8_append(r, uint32_t(u[i++]));
  }
  std::string out;
  for (const auto& w : split_ws(r)) out += (out.empty() ? "" : " ") + w;
  return out;
}

double longbench_qa_f1(const std::string& prediction, const std::string& ground_truth) {
  const auto p = split_ws(longbench_normalize_answer(prediction));
  const auto g = split_ws(longbench_normalize_answer(ground_truth));
  std::map<std::string, int> pc, gc;
  for (const auto& w : p) ++pc[w];
  for (const auto& w : g) ++gc[w];
  int same = 0;
  for (const auto& [w, c] : pc) {
    auto it = gc.find(w);
    if (it != gc.end()) same += std::min(c, it->second);
  }
  if (same == 0) return 0.0;
  const double precision = double(same) / double(p.size());
  const double recall = double(same) / double(g.size());
  return 2 * precision * recall / (precision + recall);
}

double longbench_rouge_l(const std::string& prediction, const std::string& ground_truth) {
  const auto hyp = rouge_sentences(prediction);
  const auto ref = rouge_sentences(ground_truth);
  if (hyp.empty() || ref.empty()) return 0.0;
  std::set<std::string> ref_words, hyp_words, lcs_union;
  for (const auto& s : ref) ref_words.insert(s.begin(), s.end());
  for (const auto& s : hyp) hyp_words.insert(s.begin(), s.end());
  for (const auto& r : ref) {
    for (const auto& h : hyp) {
      for (auto& w : recon_lcs(r, h)) lcs_union.insert(std::move(w));
    }
  }
  const double llcs = double(lcs_union.size());
  const double r_lcs = llcs / double(ref_words.size());
  const double p_lcs = llcs / double(hyp_words.size());
  return 2.0 * (p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8);
}

double longbench_classification(const std::string& prediction, const std::string& ground_truth,
                                const std::vector<std::string>& all_classes) {
  std::vector<std::string> matches;
  for (const auto& c : all_classes) {
    if (prediction.find(c) != std::string::npos) matches.push_back(c);
  }
  // `for match_term in em_match_list: ... em_match_list.remove(match_term)`: Python's list iterator keeps its
  // index, so the element after a removed one is skipped.
  for (size_t i = 0; i < matches.size(); ++i) {
    const std::string term = matches[i];
    if (ground_truth.find(term) != std::string::npos && term != ground_truth) {
      matches.erase(std::find(matches.begin(), matches.end(), term));
    }
  }
  if (std::find(matches.begin(), matches.end(), ground_truth) == matches.end()) return 0.0;
  return 1.0 / double(matches.size());
}

double longbench_retrieval(const std::string& prediction, const std::string& ground_truth) {
  const std::string id = number_after(ground_truth, "Paragraph ");
  return id.empty() ? 0.0 : share_equal(prediction, id);
}

double longbench_retrieval_zh(const std::string& prediction, const std::string& ground_truth) {
  const std::string id = number_after(ground_truth, "段落");
  return id.empty() ? 0.0 : share_equal(prediction, id);
}

double longbench_count(const std::string& prediction, const std::string& ground_truth) {
  return share_equal(prediction, ground_truth);
}

double difflib_ratio(const std::string& a, const std::string& b) {
  const std::u32string ua = code_points(a), ub = code_points(b);
  const size_t total = ua.size() + ub.size();
  if (total == 0) return 1.0;
  return 2.0 * double(difflib_matches(ua, ub)) / double(total);
}

int fuzz_ratio(const std::string& a, const std::string& b) {
  if (a == b) return 100;
  if (a.empty() || b.empty()) return 0;
  return int(std::nearbyint(100.0 * difflib_ratio(a, b)));  // default rounding mode: ties to even, as Python round()
}

double longbench_code_sim(const std::string& prediction, const std::string& ground_truth) {
  size_t start = prediction.find_first_not_of('\n');
  const std::string stripped = start == std::string::npos ? "" : prediction.substr(start);
  std::string line;
  for (const auto& l : split_on(stripped, '\n')) {
    if (l.find('`') == std::string::npos && l.find('#') == std::string::npos && l.find("//") == std::string::npos) {
      line = l;
      break;
    }
  }
  return fuzz_ratio(line, ground_truth) / 100.0;
}

}  // namespace lcllm
