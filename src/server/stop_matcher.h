// Stop strings over streamed text: holds back the tail of the output while it could still grow into a stop string,
// so a stream never shows text that a later stop match would have cut (OpenAI: the stop sequence itself and
// everything after it are not returned). Pieces come from the incremental detokenizer, so they hold whole UTF-8
// characters; a held-back tail starts where a stop string's first byte matches, which is a character boundary.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace lcllm {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);  // empty strings are ignored

  // Adds generated text; returns the part that is now final. Once stopped() the rest is dropped.
  std::string push(std::string_view piece);
  // End of output without a match: the held-back tail.
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // text not yet returned: a possible stop-string prefix (or a whole match)
  bool stopped_ = false;
};

}  // namespace lcllm
