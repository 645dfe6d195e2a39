#include "tokenizer/incremental_detokenizer.h"

#include <span>

namespace lcllm {

namespace {
bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}
}  // namespace

std::string IncrementalDetokenizer::push(int32_t id) {
  ids_.push_back(id);
  const std::span<const int32_t> all(ids_);
  const std::string prefix = tok_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  std::string text = tok_.decode(all.subspan(prefix_offset_), skip_special_);
  if (text.size() <= prefix.size() || ends_with_replacement(text) || text.compare(0, prefix.size(), prefix) != 0)
    return {};
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  emitted_bytes_ += text.size() - prefix.size();
  return text.substr(prefix.size());
}

std::string IncrementalDetokenizer::finish() {
  // Once, at the end: whatever the full decode has beyond what was streamed.
  const std::string full = tok_.decode(ids_, skip_special_);
  std::string rest = full.size() > emitted_bytes_ ? full.substr(emitted_bytes_) : std::string();
  emitted_bytes_ = full.size();
  prefix_offset_ = read_offset_ = ids_.size();
  return rest;
}

}  // namespace lcllm
