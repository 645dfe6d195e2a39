// What every eval run shares: the model's tokenizer, config and task text, the attention plans of the requested
// policies (resolved and validated before anything runs), and engine loading per policy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "attention/attention_plan.h"
#include "eval/eval_text.h"
#include "io/model_config.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace lcllm {

// Bumped whenever prompt construction changes, so resumed runs never mix results of different prompt builders.
inline constexpr int kEvalHarnessVersion = 2;  // 2: RULER-match NIAH score, teacher-forced answers

struct EvalPolicy {
  std::string spec;         // the --policy item: a preset name or a plan file
  std::string label;        // file-name-safe name used in outputs
  AttentionPlan plan;
  std::string fingerprint;  // hex FNV-1a of the plan's JSON, so resumed results are tied to the plan they ran
};

struct EvalEngineSettings {
  std::string device = "auto";
  int32_t threads = 0;
  int32_t chunk_size = 256;
  float gpu_memory_fraction = 0.9f;
  int32_t batch_size = 8;  // sequences decoded together; the KV cache is sized for this many
  std::string kv_cache_dtype = "auto";  // EngineOptions::kv_cache_dtype
  std::function<void(size_t, size_t)> load_progress;
};

class EvalSession {
 public:
  // Loads tokenizer (required: MODEL or `tokenizer_path`), config.json, lcllm_eval.json or the defaults, and
  // resolves every policy. Throws lcllm::Error naming what is missing or wrong.
  EvalSession(const std::string& model_dir, const std::vector<std::string>& policies, const std::string& tokenizer_path = "");

  const std::string& model_dir() const { return model_dir_; }
  const std::string& model_name() const { return model_name_; }  // the directory's base name
  const Tokenizer& tokenizer() const { return *tok_; }
  const ModelConfig& config() const { return config_; }
  const EvalText& text() const { return text_; }
  // Natural text from `path` as the haystack (eval/haystack_text.h) instead of the task text's filler.
  void use_haystack(const std::string& path);
  // A KV cache dtype other than "auto" becomes part of every policy's fingerprint, so resumed results computed
  // with another precision are recomputed rather than mixed in.
  void use_kv_cache_dtype(const std::string& dtype);
  const std::vector<EvalPolicy>& policies() const { return policies_; }

  // Logs a warning when `tokens` exceeds the model's max_position_embeddings (results past the trained length
  // measure extrapolation, not retrieval).
  void warn_if_beyond_trained(int64_t tokens) const;

  // An engine running `policy` whose KV cache holds min(settings.batch_size, max_batch) sequences of
  // `context_tokens` each (max_batch: the largest group of requests that will be decoded together). With
  // `forced_tokens` > 0 each sequence also has room for a teacher-forced fork of that many tokens (GenRequest::forced).
  std::unique_ptr<Engine> load_engine(const EvalPolicy& policy, int32_t context_tokens,
                                      const EvalEngineSettings& settings, size_t max_batch = SIZE_MAX,
                                      int32_t forced_tokens = 0) const;

 private:
  std::string model_dir_, model_name_;
  std::unique_ptr<Tokenizer> tok_;
  ModelConfig config_;
  EvalText text_;
  std::vector<EvalPolicy> policies_;
};

}  // namespace lcllm
