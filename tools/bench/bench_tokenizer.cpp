// Encode throughput of lcllm's tokenizers on one thread.
//   bench_tokenizer TOKENIZER CORPUS.jsonl [--repeat N] [--joined]
// CORPUS is a JSON Lines file whose lines are strings or objects with a "text" field (e.g. the committed
// tests/fixtures/tokenizer/<name>.jsonl). Each string is encoded separately (add_special_tokens=false); with
// --joined the strings are joined by "\n" into one document first. Prints one JSON object:
// {"tokenizer", "mode", "bytes", "tokens", "seconds", "mb_per_s", "load_seconds"} (best of N repeats after one warm-up).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lcllm/error.h"
#include "tokenizer/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TOKENIZER CORPUS.jsonl [--repeat N] [--joined]\n", argv[0]);
    return 2;
  }
  int repeat = 5;
  bool joined = false;
  for (int i = 3; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--joined")) joined = true;
  }
  using clock = std::chrono::steady_clock;
  try {
    std::vector<std::string> texts;
    std::ifstream f(argv[2]);
    if (!f) throw lcllm::Error(lcllm::ErrorKind::ERROR_KIND_NOT_FOUND, std::string(argv[2]) + ": cannot open");
    std::string line;
    while (std::getline(f, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      texts.push_back(j.is_string() ? j.get<std::string>() : j.at("text").get<std::string>());
    }
    if (joined) {
      std::string all;
      for (auto& t : texts) all += t + "\n";
      texts.assign(1, all);
    }
    std::size_t bytes = 0;
    for (auto& t : texts) bytes += t.size();

    const auto t0 = clock::now();
    auto tok = lcllm::Tokenizer::load(argv[1]);
    const double load_s = std::chrono::duration<double>(clock::now() - t0).count();

    double best = 1e30;
    std::size_t tokens = 0;
    for (int r = 0; r <= repeat; ++r) {  // r == 0 is the warm-up
      tokens = 0;
      const auto a = clock::now();
      for (auto& t : texts) tokens += tok->encode(t, false).size();
      const double s = std::chrono::duration<double>(clock::now() - a).count();
      if (r > 0 && s < best) best = s;
    }
    nlohmann::json out = {{"tokenizer", argv[1]}, {"mode", joined ? "joined" : "per_string"},
                          {"bytes", bytes}, {"tokens", tokens}, {"seconds", best},
                          {"mb_per_s", double(bytes) / 1e6 / best}, {"load_seconds", load_s}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
    return 1;
  }
  return 0;
}
