#include "tokenizer_test_util.h"

#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace lcllm::test {

const Tokenizer& real_tokenizer(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[name];
  if (!slot) slot = Tokenizer::load(std::string(LCLLM_SHARED_DIR) + "/assets/tokenizers/" + name + "/tokenizer.json");
  return *slot;
}

const Tokenizer& llama2_spm() {
  static std::unique_ptr<Tokenizer> t =
      Tokenizer::load(std::string(LCLLM_SHARED_DIR) + "/assets/tokenizers/llama2/tokenizer.model");
  return *t;
}

const std::vector<RefCase>& ref_cases(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::vector<RefCase>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  const std::string path = std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/tokenizer/" + name + ".jsonl";
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<RefCase> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    RefCase c;
    c.text = j.at("text").get<std::string>();
    c.ids = j.at("ids").get<std::vector<int32_t>>();
    c.ids_special = j.at("ids_special").get<std::vector<int32_t>>();
    c.decoded = j.at("decoded").get<std::string>();
    c.decoded_skip = j.contains("decoded_skip") ? j["decoded_skip"].get<std::string>() : c.decoded;
    c.roundtrip = j.contains("roundtrip") && j["roundtrip"].get<bool>();
    if (j.contains("spm_ids")) {
      c.spm_ids = j["spm_ids"].get<std::vector<int32_t>>();
      c.spm_decoded = j["spm_decoded"].get<std::string>();
    }
    out.push_back(std::move(c));
  }
  return cache.emplace(name, std::move(out)).first->second;
}

std::string show_ids(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) s.push_back(',');
    s.append(std::to_string(ids[i]));
  }
  return s + "]";
}

std::string escape(const std::string& s) { return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace lcllm::test
