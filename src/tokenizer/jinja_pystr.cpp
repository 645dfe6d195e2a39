#include "tokenizer/jinja_pystr.h"

#include <algorithm>

#include "tokenizer/jinja_value.h"

namespace lcllm::jinja {

namespace {

unsigned char byte_at(std::string_view s, std::size_t pos) { return static_cast<unsigned char>(s[pos]); }

// Simple one-to-one case mappings for the scripts chat content commonly uses (ASCII, Latin-1, Latin Extended-A,
// Greek, Cyrillic). Python maps every cased script; what is missing here stays unchanged (documented).
char32_t cp_upper(char32_t c) {
  if (c >= U'a' && c <= U'z') return c - 32;
  if (c < 0x80) return c;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return (c & 1) ? c - 1 : c;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c : c - 1;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x3B1 && c <= 0x3C9) return c - 32;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

char32_t cp_lower(char32_t c) {
  if (c >= U'A' && c <= U'Z') return c + 32;
  if (c < 0x80) return c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return (c & 1) ? c : c + 1;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c + 1 : c;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

bool cp_cased(char32_t c) { return cp_upper(c) != c || cp_lower(c) != c || c == 0xDF; }

bool cp_alpha(char32_t c) {
  if (c < 0x80) return (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
  if (cp_cased(c) || c == 0xAA || c == 0xBA) return true;
  return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7A3) ||
         (c >= 0x5D0 && c <= 0x5EA) || (c >= 0x620 && c <= 0x64A) || (c >= 0x905 && c <= 0x939);
}

bool cp_digit(char32_t c) { return c >= U'0' && c <= U'9'; }

template <typename F>
std::string map_chars(std::string_view s, F f) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t pos = 0; pos < s.size();) {
    std::size_t len = 0;
    char32_t c = utf8_decode_at(s, pos, &len);
    if (c >= 0xDC80 && c <= 0xDCFF && len == 1) {
      out.push_back(s[pos]);  // keep an invalid byte as it was
    } else {
      utf8_append(out, f(c));
    }
    pos += len;
  }
  return out;
}

bool is_line_break(char32_t c) {
  return c == U'\n' || c == U'\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
         c == 0x2028 || c == 0x2029;
}

bool repr_printable(char32_t c) {
  if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return false;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F))
    return false;
  if (c == 0x3000 || c == 0xFEFF || (c >= 0xD800 && c <= 0xDFFF) || (c >= 0xE000 && c <= 0xF8FF)) return false;
  if ((c >= 0xFFF9 && c <= 0xFFFB) || c >= 0xF0000 || (c >= 0xE0000 && c <= 0xE007F)) return false;
  if ((c >= 0x600 && c <= 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F || c == 0x180E) return false;
  return true;
}

const char* kHex = "0123456789abcdef";

void append_hex(std::string& out, std::uint32_t v, int digits) {
  for (int d = digits - 1; d >= 0; --d) out.push_back(kHex[(v >> (4 * d)) & 0xF]);
}

}  // namespace

std::size_t utf8_char_len(std::string_view s, std::size_t pos) {
  std::size_t len = 0;
  utf8_decode_at(s, pos, &len);
  return len;
}

char32_t utf8_decode_at(std::string_view s, std::size_t pos, std::size_t* len) {
  unsigned char b0 = byte_at(s, pos);
  *len = 1;
  if (b0 < 0x80) return b0;
  std::size_t n = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, cp = b0 & 0x1Fu, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, cp = b0 & 0x0Fu, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, cp = b0 & 0x07u, min = 0x10000;
  } else {
    return 0xDC00 + b0;
  }
  if (pos + n > s.size()) return 0xDC00 + b0;
  for (std::size_t k = 1; k < n; ++k) {
    unsigned char b = byte_at(s, pos + k);
    if ((b & 0xC0) != 0x80) return 0xDC00 + b0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0xDC00 + b0;
  *len = n;
  return cp;
}

std::vector<std::size_t> utf8_offsets(std::string_view s) {
  std::vector<std::size_t> offs;
  offs.reserve(s.size() + 1);
  for (std::size_t pos = 0; pos < s.size(); pos += utf8_char_len(s, pos)) offs.push_back(pos);
  offs.push_back(s.size());
  return offs;
}

std::size_t utf8_count(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t pos = 0; pos < s.size(); pos += utf8_char_len(s, pos)) ++n;
  return n;
}

bool py_isspace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::size_t py_space_prefix(std::string_view s) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t len = 0;
    if (!py_isspace(utf8_decode_at(s, pos, &len))) break;
    pos += len;
  }
  return pos;
}

std::size_t py_space_suffix(std::string_view s) {
  std::size_t end = s.size();
  while (end > 0) {
    std::size_t start = end - 1;
    while (start > 0 && (byte_at(s, start) & 0xC0) == 0x80 && end - start < 4) --start;
    std::size_t len = 0;
    char32_t c = utf8_decode_at(s, start, &len);
    if (start + len != end) {  // not a whole character ending here: the last byte is on its own
      start = end - 1;
      c = utf8_decode_at(s, start, &len);
    }
    if (!py_isspace(c)) break;
    end = start;
  }
  return s.size() - end;
}

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  if (!chars) {
    std::size_t b = left ? py_space_prefix(s) : 0;
    std::string_view rest = s.substr(b);
    std::size_t e = right ? py_space_suffix(rest) : 0;
    return std::string(rest.substr(0, rest.size() - e));
  }
  std::vector<std::size_t> offs = utf8_offsets(s);
  std::vector<std::string_view> set_chars;
  for (std::size_t p = 0; p < chars->size(); p += utf8_char_len(*chars, p))
    set_chars.push_back(std::string_view(*chars).substr(p, utf8_char_len(*chars, p)));
  auto in_set = [&](std::size_t k) {
    std::string_view ch = s.substr(offs[k], offs[k + 1] - offs[k]);
    return std::find(set_chars.begin(), set_chars.end(), ch) != set_chars.end();
  };
  std::size_t n = offs.size() - 1, lo = 0, hi = n;
  if (left)
    while (lo < hi && in_set(lo)) ++lo;
  if (right)
    while (hi > lo && in_set(hi - 1)) --hi;
  return std::string(s.substr(offs[lo], offs[hi] - offs[lo]));
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, std::int64_t maxsplit,
                                  bool from_right) {
  std::vector<std::string> parts;
  if (sep && sep->empty()) fault("ValueError: empty separator");
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (sep) {
    if (!from_right) {
      std::size_t pos = 0;
      while (maxsplit > 0) {
        std::size_t hit = s.find(*sep, pos);
        if (hit == std::string_view::npos) break;
        parts.emplace_back(s.substr(pos, hit - pos));
        pos = hit + sep->size();
        --maxsplit;
      }
      parts.emplace_back(s.substr(pos));
    } else {
      std::size_t end = s.size();
      while (maxsplit > 0 && end >= sep->size()) {
        std::size_t hit = s.rfind(*sep, end - sep->size());
        if (hit == std::string_view::npos) break;
        parts.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
        end = hit;
        --maxsplit;
      }
      parts.emplace_back(s.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
    return parts;
  }
  // Whitespace runs; leading/trailing whitespace never yields empty parts.
  std::vector<std::size_t> offs = utf8_offsets(s);
  std::size_t n = offs.size() - 1;
  std::vector<bool> space(n);
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t len = 0;
    space[k] = py_isspace(utf8_decode_at(s, offs[k], &len));
  }
  if (!from_right) {
    std::size_t k = 0;
    while (k < n) {
      while (k < n && space[k]) ++k;
      if (k == n) break;
      if (maxsplit == 0) {
        std::size_t e = n;
        while (e > k && space[e - 1]) --e;
        parts.emplace_back(s.substr(offs[k], offs[e] - offs[k]));
        break;
      }
      std::size_t start = k;
      while (k < n && !space[k]) ++k;
      parts.emplace_back(s.substr(offs[start], offs[k] - offs[start]));
      --maxsplit;
    }
  } else {
    std::size_t k = n;
    while (k > 0) {
      while (k > 0 && space[k - 1]) --k;
      if (k == 0) break;
      if (maxsplit == 0) {
        std::size_t b = 0;
        while (b < k && space[b]) ++b;
        parts.emplace_back(s.substr(offs[b], offs[k] - offs[b]));
        break;
      }
      std::size_t end = k;
      while (k > 0 && !space[k - 1]) --k;
      parts.emplace_back(s.substr(offs[k], offs[end] - offs[k]));
      --maxsplit;
    }
    std::reverse(parts.begin(), parts.end());
  }
  return parts;
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  std::vector<std::string> lines;
  std::size_t start = 0, pos = 0;
  while (pos < s.size()) {
    std::size_t len = 0;
    char32_t c = utf8_decode_at(s, pos, &len);
    if (is_line_break(c)) {
      std::size_t brk = len;
      if (c == U'\r' && pos + 1 < s.size() && s[pos + 1] == '\n') brk = 2;
      lines.emplace_back(s.substr(start, (keepends ? pos + brk : pos) - start));
      pos += brk;
      start = pos;
    } else {
      pos += len;
    }
  }
  if (start < s.size()) lines.emplace_back(s.substr(start));
  return lines;
}

std::string py_replace(std::string_view s, std::string_view old_text, std::string_view new_text, std::int64_t count,
                       std::size_t max_bytes) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  auto grow_check = [&]() {
    if (out.size() > max_bytes) fault("replace result exceeds max_output_bytes (" + std::to_string(max_bytes) + ")");
  };
  if (old_text.empty()) {
    std::size_t pos = 0;
    while (pos < s.size()) {
      if (count > 0) {
        out += new_text;
        --count;
      }
      std::size_t len = utf8_char_len(s, pos);
      out += s.substr(pos, len);
      pos += len;
      grow_check();
    }
    if (count > 0) out += new_text;
    grow_check();
    return out;
  }
  std::size_t pos = 0;
  while (count > 0) {
    std::size_t hit = s.find(old_text, pos);
    if (hit == std::string_view::npos) break;
    out += s.substr(pos, hit - pos);
    out += new_text;
    pos = hit + old_text.size();
    --count;
    grow_check();
  }
  out += s.substr(pos);
  grow_check();
  return out;
}

std::string py_upper(std::string_view s) {
  std::string out = map_chars(s, cp_upper);
  for (std::size_t pos = out.find("\xC3\x9F"); pos != std::string::npos; pos = out.find("\xC3\x9F", pos))
    out.replace(pos, 2, "SS");  // U+00DF sharp s upper-cases to "SS"
  return out;
}
std::string py_lower(std::string_view s) { return map_chars(s, cp_lower); }

std::string py_capitalize(std::string_view s) {
  bool first = true;
  return map_chars(s, [&](char32_t c) {
    char32_t r = first ? cp_upper(c) : cp_lower(c);
    first = false;
    return r;
  });
}

std::string py_title(std::string_view s) {
  bool prev_cased = false;
  return map_chars(s, [&](char32_t c) {
    char32_t r = prev_cased ? cp_lower(c) : cp_upper(c);
    prev_cased = cp_cased(c);
    return r;
  });
}

std::string jinja_title(std::string_view s) {
  bool word_start = true;
  return map_chars(s, [&](char32_t c) {
    bool sep = c == U'-' || c == U'(' || c == U'{' || c == U'[' || c == U'<' || py_isspace(c);
    char32_t r = sep ? c : (word_start ? cp_upper(c) : cp_lower(c));
    word_start = sep;
    return r;
  });
}

bool py_is_class(std::string_view s, int cls) {
  if (s.empty()) return false;
  bool any_cased = false;
  for (std::size_t pos = 0; pos < s.size();) {
    std::size_t len = 0;
    char32_t c = utf8_decode_at(s, pos, &len);
    pos += len;
    switch (cls) {
      case 0: if (!cp_digit(c)) return false; break;
      case 1: if (!cp_alpha(c)) return false; break;
      case 2: if (!cp_alpha(c) && !cp_digit(c)) return false; break;
      case 3: if (!py_isspace(c)) return false; break;
      case 4:
        if (cp_lower(c) != c) return false;
        any_cased = any_cased || cp_cased(c);
        break;
      default:
        if (cp_upper(c) != c) return false;
        any_cased = any_cased || cp_cased(c);
        break;
    }
  }
  return cls < 4 || any_cased;
}

std::int64_t py_find(std::string_view s, std::string_view sub, bool from_right) {
  std::size_t hit = from_right ? s.rfind(sub) : s.find(sub);
  if (hit == std::string_view::npos) return -1;
  return static_cast<std::int64_t>(utf8_count(s.substr(0, hit)));
}

std::int64_t py_count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<std::int64_t>(utf8_count(s)) + 1;
  std::int64_t n = 0;
  for (std::size_t pos = s.find(sub); pos != std::string_view::npos; pos = s.find(sub, pos + sub.size())) ++n;
  return n;
}

std::string py_str_repr(std::string_view s) {
  bool has_single = s.find('\'') != std::string_view::npos;
  bool has_double = s.find('"') != std::string_view::npos;
  char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, quote);
  for (std::size_t pos = 0; pos < s.size();) {
    std::size_t len = 0;
    char32_t c = utf8_decode_at(s, pos, &len);
    if (c == static_cast<char32_t>(quote) || c == U'\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == U'\n') {
      out += "\\n";
    } else if (c == U'\r') {
      out += "\\r";
    } else if (c == U'\t') {
      out += "\\t";
    } else if (!repr_printable(c)) {
      if (c < 0x100) {
        out += "\\x", append_hex(out, c, 2);
      } else if (c < 0x10000) {
        out += "\\u", append_hex(out, c, 4);
      } else {
        out += "\\U", append_hex(out, c, 8);
      }
    } else {
      out += s.substr(pos, len);
    }
    pos += len;
  }
  out.push_back(quote);
  return out;
}

void json_escape_append(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  for (std::size_t pos = 0; pos < s.size();) {
    std::size_t len = 0;
    char32_t c = utf8_decode_at(s, pos, &len);
    switch (c) {
      case U'"': out += "\\\""; break;
      case U'\\': out += "\\\\"; break;
      case U'\n': out += "\\n"; break;
      case U'\r': out += "\\r"; break;
      case U'\t': out += "\\t"; break;
      case U'\b': out += "\\b"; break;
      case U'\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7E && c != 0x7F)) {
          if (c >= 0x10000) {
            std::uint32_t v = static_cast<std::uint32_t>(c) - 0x10000;
            out += "\\u", append_hex(out, 0xD800 + (v >> 10), 4);
            out += "\\u", append_hex(out, 0xDC00 + (v & 0x3FF), 4);
          } else {
            out += "\\u", append_hex(out, c, 4);
          }
        } else {
          out += s.substr(pos, len);
        }
    }
    pos += len;
  }
  out.push_back('"');
}

}  // namespace lcllm::jinja
