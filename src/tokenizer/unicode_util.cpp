#include "tokenizer/unicode_util.h"

#include <algorithm>
#include <vector>

#include "tokenizer/unicode_nfc_data.h"

namespace lcllm {

namespace {
inline bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

// How many bytes at s[i] form a valid prefix of a UTF-8 sequence (the "maximal subpart" of Unicode §3.9),
// and whether that prefix is a complete sequence.
std::size_t utf8_prefix_len(std::string_view s, std::size_t i, bool& complete) {
  complete = false;
  const unsigned char c0 = static_cast<unsigned char>(s[i]);
  if (c0 < 0x80) { complete = true; return 1; }
  std::size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c0 >= 0xC2 && c0 <= 0xDF) need = 2;
  else if (c0 == 0xE0) { need = 3; lo = 0xA0; }
  else if (c0 >= 0xE1 && c0 <= 0xEC) need = 3;
  else if (c0 == 0xED) { need = 3; hi = 0x9F; }
  else if (c0 >= 0xEE && c0 <= 0xEF) need = 3;
  else if (c0 == 0xF0) { need = 4; lo = 0x90; }
  else if (c0 >= 0xF1 && c0 <= 0xF3) need = 4;
  else if (c0 == 0xF4) { need = 4; hi = 0x8F; }
  else return 1;  // 80..C1, F5..FF: never valid
  std::size_t k = 1;
  for (; k < need; ++k) {
    if (i + k >= s.size()) return k;
    const unsigned char c = static_cast<unsigned char>(s[i + k]);
    if (k == 1 ? (c < lo || c > hi) : !is_cont(c)) return k;
  }
  complete = true;
  return need;
}
}  // namespace

std::size_t utf8_valid_len(std::string_view s, std::size_t i) {
  bool complete;
  const std::size_t n = utf8_prefix_len(s, i, complete);
  return complete ? n : 0;
}

bool utf8_is_valid(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) { ++i; continue; }
    const std::size_t n = utf8_valid_len(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (std::size_t i = 0; i < s.size();) {
    bool complete;
    const std::size_t n = utf8_prefix_len(s, i, complete);
    if (complete) out.append(s.substr(i, n));
    else out.append("\xEF\xBF\xBD");
    i += n;
  }
  return out;
}

uint32_t utf8_next(std::string_view s, std::size_t& i) {
  const unsigned char c0 = static_cast<unsigned char>(s[i]);
  if (c0 < 0x80) { ++i; return c0; }
  auto b = [&](std::size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
  uint32_t cp;
  if (c0 < 0xE0) { cp = ((c0 & 0x1Fu) << 6) | b(1); i += 2; }
  else if (c0 < 0xF0) { cp = ((c0 & 0x0Fu) << 12) | (b(1) << 6) | b(2); i += 3; }
  else { cp = ((c0 & 0x07u) << 18) | (b(1) << 12) | (b(2) << 6) | b(3); i += 4; }
  return cp;
}

std::size_t utf8_complete_prefix(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence is cut off by the end of s.
  const std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if (is_cont(c)) continue;
    if (c < 0xC0) return n;  // ASCII: complete
    bool complete;
    const std::size_t len = utf8_prefix_len(s, n - back, complete);
    if (!complete && len == back) return n - back;  // a valid but unfinished sequence
    return n;
  }
  return n;
}

// ---- NFC -------------------------------------------------------------------------------------
namespace {
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint8_t ccc_of(uint32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = unicode_data::kCcc + unicode_data::kCccCount;
  const auto* it = std::lower_bound(unicode_data::kCcc, end, cp,
                                    [](const unicode_data::CccEntry& e, uint32_t v) { return e.cp < v; });
  return (it != end && it->cp == cp) ? it->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    const auto* end = unicode_data::kDecomp + unicode_data::kDecompCount;
    const auto* it = std::lower_bound(unicode_data::kDecomp, end, cp,
                                      [](const unicode_data::DecompEntry& e, uint32_t v) { return e.cp < v; });
    if (it != end && it->cp == cp) {
      decompose(it->first, out);
      if (it->second != 0) decompose(it->second, out);
      return;
    }
  }
  out.push_back(cp);
}

uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const uint64_t key = (static_cast<uint64_t>(a) << 21) | b;
  const auto* end = unicode_data::kComp + unicode_data::kCompCount;
  const auto* it = std::lower_bound(unicode_data::kComp, end, key,
                                    [](const unicode_data::CompEntry& e, uint64_t v) { return e.pair < v; });
  return (it != end && it->pair == key) ? it->composite : 0;
}
}  // namespace

std::string unicode_nfc(std::string_view s) {
  // Every code point below U+0300 is NFC-stable and never composes with what precedes it; their UTF-8 lead
  // bytes are all below 0xCC, so a string without such a byte is already NFC.
  bool fast = true;
  for (char ch : s) {
    if (static_cast<unsigned char>(ch) >= 0xCC) { fast = false; break; }
  }
  if (fast) return std::string(s);

  std::vector<uint32_t> cps;
  cps.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) decompose(utf8_next(s, i), cps);
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (std::size_t i = 0; i < cps.size();) {
    if (ccc_of(cps[i]) == 0) { ++i; continue; }
    std::size_t j = i;
    while (j < cps.size() && ccc_of(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<std::ptrdiff_t>(i), cps.begin() + static_cast<std::ptrdiff_t>(j),
                     [](uint32_t x, uint32_t y) { return ccc_of(x) < ccc_of(y); });
    i = j;
  }
  // Canonical composition (UAX #15, "Detailed algorithm").
  std::vector<uint32_t> res;
  res.reserve(cps.size());
  std::size_t starter = 0;
  int last_class = -1;  // -1: no starter seen yet
  for (uint32_t cp : cps) {
    const int cc = ccc_of(cp);
    if (last_class >= 0 && (last_class < cc || last_class == 0)) {
      // last_class == 0 means the starter is the previous character (adjacent).
      const uint32_t comp = compose_pair(res[starter], cp);
      if (comp != 0 && (last_class < cc || (last_class == 0 && res.size() - 1 == starter))) {
        res[starter] = comp;
        continue;
      }
    }
    if (cc == 0) {
      starter = res.size();
      last_class = 0;
    } else if (last_class >= 0) {
      last_class = cc;
    }
    res.push_back(cp);
  }
  std::string out;
  out.reserve(s.size());
  for (uint32_t cp : res) utf8_append(out, cp);
  return out;
}

}  // namespace lcllm
