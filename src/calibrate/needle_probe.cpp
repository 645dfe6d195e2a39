#include "calibrate/needle_probe.h"

#include <algorithm>
#include <random>
#include <string>

#include "lcllm/error.h"

namespace lcllm {

namespace {

// Neutral filler (our own sentences): varied enough that no token repeats in a tight loop.
const char* const kFiller[] = {
    "The river bends twice before it reaches the old mill at the edge of town.",
    "Every spring the orchard fills with blossoms and the sound of bees.",
    "A narrow staircase leads from the kitchen to a small attic full of books.",
    "Rain fell steadily through the night, and by morning the fields were flooded.",
    "The market opens early on Saturdays, when farmers bring bread, cheese and apples.",
    "Several travellers rested under the bridge while the storm passed overhead.",
    "Lanterns hung along the harbour wall, swaying gently in the evening wind.",
    "The library keeps its oldest maps in a cool room behind the reading hall.",
};
const char* const kWords[] = {"amber", "falcon", "granite", "violet", "harbor", "cedar", "copper", "meadow",
                              "silver", "thistle", "orchid", "lantern", "willow", "quartz", "ember", "raven"};

std::vector<int32_t> encode(const Tokenizer& tok, const std::string& text) { return tok.encode(text, false); }

}  // namespace

std::vector<NeedleProbe> needle_probes_build(const Tokenizer& tok, int32_t n_probes, int32_t context_tokens,
                                             uint64_t seed, const std::string& natural_text) {
  if (n_probes < 1) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--probes must be >= 1");
  if (context_tokens < 64) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "--context must be >= 64 tokens (filler + needle + question), got " + std::to_string(context_tokens));
  }
  std::mt19937_64 rng(seed);
  // Filler tokens, long enough for the largest probe.
  std::vector<int32_t> filler;
  std::vector<int32_t> natural;  // [tokens of natural_text]
  if (!natural_text.empty()) {
    natural = encode(tok, natural_text);
    if (natural.size() < 64) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "the natural-text filler has " + std::to_string(natural.size()) +
                                                              " tokens; calibration needs a longer text");
    }
  }
  for (size_t i = 0; natural.empty() && filler.size() < size_t(context_tokens); ++i) {
    const std::vector<int32_t> s = encode(tok, std::string(" ") + kFiller[i % std::size(kFiller)]);
    if (s.empty() && i > std::size(kFiller)) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "the tokenizer encodes the filler text to no tokens");
    }
    filler.insert(filler.end(), s.begin(), s.end());
  }
  const std::vector<int32_t> bos = tok.encode("", true);  // the model's BOS, if it adds one
  const std::vector<int32_t> prefix = encode(tok, " The secret passphrase is");
  const std::vector<int32_t> suffix = encode(tok, ".");
  const std::vector<int32_t> question = encode(tok, " What is the secret passphrase? The secret passphrase is");
  std::vector<NeedleProbe> probes;
  for (int32_t p = 0; p < n_probes; ++p) {
    std::uniform_int_distribution<size_t> word(0, std::size(kWords) - 1);
    std::uniform_int_distribution<int> number(1000, 9999);
    const std::string value = std::string(" ") + kWords[word(rng)] + " " + kWords[word(rng)] + " " +
                              std::to_string(number(rng));
    NeedleProbe probe;
    probe.answer = encode(tok, value);
    if (!natural.empty()) {  // this probe's passage: context_tokens tokens from a seeded start
      const size_t start = std::uniform_int_distribution<size_t>(0, natural.size() - 1)(rng);
      filler.clear();
      for (size_t k = 0; filler.size() < size_t(context_tokens); ++k) filler.push_back(natural[(start + k) % natural.size()]);
    }
    probe.depth = n_probes == 1 ? 0.5 : 0.1 + 0.8 * double(p) / double(n_probes - 1);
    const int64_t fixed = int64_t(bos.size() + prefix.size() + probe.answer.size() + suffix.size() + question.size());
    const int64_t n_filler = std::max<int64_t>(8, context_tokens - fixed);
    const int64_t before = int64_t(double(n_filler) * probe.depth);
    auto& c = probe.context;
    c.insert(c.end(), bos.begin(), bos.end());
    c.insert(c.end(), filler.begin(), filler.begin() + before);
    c.insert(c.end(), prefix.begin(), prefix.end());
    probe.value_begin = int32_t(c.size());
    c.insert(c.end(), probe.answer.begin(), probe.answer.end());
    c.insert(c.end(), suffix.begin(), suffix.end());
    c.insert(c.end(), filler.begin() + before, filler.begin() + n_filler);
    c.insert(c.end(), question.begin(), question.end());
    if (probe.answer.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "the needle value encodes to no tokens");
    probes.push_back(std::move(probe));
  }
  return probes;
}

}  // namespace lcllm
