#include "eval/eval_session.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <set>

#include <spdlog/spdlog.h>

#include "attention/attention_plan_json.h"
#include "eval/haystack_text.h"
#include "eval/result_io.h"
#include "lcllm/error.h"
#include "models/model_family.h"

namespace lcllm {

EvalSession::EvalSession(const std::string& model_dir, const std::vector<std::string>& policies,
                         const std::string& tokenizer_path)
    : model_dir_(model_dir) {
  std::filesystem::path p(model_dir);
  model_name_ = (p.has_filename() ? p.filename() : p.parent_path().filename()).string();
  if (model_name_.empty()) model_name_ = "model";
  config_ = model_config_load(model_dir);
  const std::string tok_src = tokenizer_path.empty() ? model_dir : tokenizer_path;
  if (tokenizer_path.empty() && !Tokenizer::available(model_dir)) {
    throw Error(ErrorKind::ERROR_KIND_NOT_FOUND, "evals build prompts from text: '" + model_dir +
                                                     "' has no tokenizer.json or tokenizer.model; pass --tokenizer");
  }
  tok_ = Tokenizer::load(tok_src);
  text_ = eval_text_load(model_dir);
  if (policies.empty()) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--policy: no policy given");
  std::set<std::string> labels;
  for (const auto& spec : policies) {
    EvalPolicy ep;
    ep.spec = spec;
    ep.label = eval_policy_label(spec);
    if (!labels.insert(ep.label).second) {
      throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                  "--policy: two policies share the output name '" + ep.label + "'; rename one plan file");
    }
    ep.plan = attention_plan_resolve(spec, config_);
    ep.fingerprint = eval_hex(eval_fnv1a(attention_plan_to_json(ep.plan).dump()));
    policies_.push_back(std::move(ep));
  }
}

void EvalSession::use_haystack(const std::string& path) { eval_text_use_haystack(text_, path); }

void EvalSession::use_kv_cache_dtype(const std::string& dtype) {
  if (dtype == "auto") return;
  for (EvalPolicy& ep : policies_) {
    ep.fingerprint = eval_hex(eval_fnv1a(attention_plan_to_json(ep.plan).dump() + "|kv_cache_dtype=" + dtype));
  }
}

void EvalSession::warn_if_beyond_trained(int64_t tokens) const {
  if (config_.max_position_embeddings > 0 && tokens > config_.max_position_embeddings) {
    spdlog::warn("{} tokens exceed {}'s max_position_embeddings ({}): those results measure extrapolation",
                 tokens, model_name_, config_.max_position_embeddings);
  }
}

std::unique_ptr<Engine> EvalSession::load_engine(const EvalPolicy& policy, int32_t context_tokens,
                                                 const EvalEngineSettings& settings, size_t max_batch,
                                                 int32_t forced_tokens) const {
  EngineOptions eo;
  eo.model_path = model_dir_;
  eo.device = settings.device;
  eo.threads = settings.threads;

  eo.gpu_memory_fraction = settings.gpu_memory_fraction;
  eo.kv_cache_dtype = settings.kv_cache_dtype;
  // Room for batch_size sequences of the longest prompt plus generation, each rounded up to whole pages plus one.
  // A teacher-forced fork shares the prompt's pages and adds its own for the forced tokens (+1 copied partial page).
  const int64_t fork = forced_tokens > 0 ? int64_t(forced_tokens / eo.page_size + 2) * eo.page_size : 0;
  const int64_t per_seq = int64_t(context_tokens / eo.page_size + 2) * eo.page_size + fork;
  const int64_t seqs = std::max<int64_t>(1, std::min<int64_t>(settings.batch_size, int64_t(std::min<size_t>(max_batch, INT32_MAX))));
  // A step holds one prefill chunk beside every in-flight sequence's decode row (a scored request has two).
  const int64_t step = int64_t(settings.chunk_size) + 2 * seqs;
  if (step > INT32_MAX) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--chunk-size + 2 x --batch-size is too large");
  eo.max_step_tokens = int32_t(step);
  const int64_t total = per_seq * seqs;
  if (total > INT32_MAX) throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "--batch-size x length is too large");
  eo.context_tokens = int32_t(total);
  // Windowed-head rings (cuda): one per sequence in flight, forks included.
  eo.max_window_sequences = int32_t(seqs * (forced_tokens > 0 ? 2 : 1));
  eo.policy = policy.spec;
  eo.plan = policy.plan;
  eo.load_progress = settings.load_progress;
  return Engine::load(eo);
}

}  // namespace lcllm
