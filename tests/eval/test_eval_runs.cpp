// End-to-end runs on the embedded default model (random weights, so scores are ~0; what is tested is the layout,
// resume logic and aggregation): eval niah cells and resume, eval ruler JSONL resume, and LongBench on small
// LongBench-format files written here.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "eval/longbench.h"
#include "eval/longbench_data.h"
#include "eval/niah.h"
#include "eval/generation.h"
#include "runtime/logprobs.h"
#include "eval/haystack.h"
#include "eval/result_io.h"
#include "eval/ruler.h"
#include "eval/tasks.h"
#include "lcllm/error.h"

using namespace lcllm;
namespace fs = std::filesystem;

namespace {

const std::string kModel = std::string(LCLLM_SOURCE_DIR) + "/models/default";

std::string temp_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("lcllm_test_eval_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

EvalEngineSettings cpu() {
  EvalEngineSettings s;
  s.device = "cpu";
  s.threads = 2;
  s.batch_size = 3;
  return s;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

size_t line_count(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  std::string l;
  while (std::getline(in, l)) ++n;
  return n;
}

}  // namespace

TEST_CASE("niah cells resume only when their parameters match") {
  EvalSession session(kModel, {"full"});
  const EvalPolicy& p = session.policies()[0];
  const std::string dir = temp_dir("cells");
  auto params = niah_cell_params("m", p, 256, 50, 0, 7, 32, "fp");
  const std::string path = niah_cell_path(dir, p.label, 256, 50, 0);
  CHECK(path == dir + "/full/len_256_depth_50_sample_0.json");
  CHECK(!niah_load_cell(path, params));  // missing
  nlohmann::ordered_json j = {{"model", "m"}, {"score", 1.0}, {"model_response", " 123."},
                              {"expected_answer", "123"}, {"test_duration_seconds", 0.5}, {"exact_match", 1.0},
                              {"value_logprob", -0.25}, {"value_tokens", 2}, {"params", params}};
  eval_write_file(path, j.dump());
  auto c = niah_load_cell(path, params);
  REQUIRE(c);
  CHECK(c->score == 1.0);
  CHECK(c->value_logprob == -0.25);
  CHECK(c->value_tokens == 2);
  CHECK(c->resumed);
  CHECK(!niah_load_cell(path, niah_cell_params("m", p, 256, 50, 0, 8, 32, "fp")));   // other seed
  CHECK(!niah_load_cell(path, niah_cell_params("m", p, 256, 50, 0, 7, 64, "fp")));   // other generation limit
  CHECK(!niah_load_cell(path, niah_cell_params("m", p, 256, 50, 0, 7, 32, "fp2")));  // other task text
  eval_write_file(path, "{\"params\": ");  // torn file
  CHECK(!niah_load_cell(path, params));
  fs::remove_all(dir);
}

TEST_CASE("niah aggregates: summary rows, comparison table, heat-map grid with NaN for missing cells") {
  auto cell = [](const char* policy, int32_t length, int32_t depth, int32_t sample, double score, double logprob) {
    NiahCell c;
    c.policy = policy;
    c.length = length;
    c.depth = depth;
    c.sample = sample;
    c.score = score;
    c.value_logprob = logprob;
    c.value_tokens = 2;
    return c;
  };
  // streaming's answer: ln p = -2.0 over 2 ids where full has -0.5 -> retained exp(-0.75) = 47.2%.
  std::vector<NiahCell> cells = {
      cell("full", 256, 0, 0, 1.0, -0.5), cell("full", 256, 0, 1, 0.0, -1.0), cell("full", 512, 100, 0, 1.0, -0.2),
      cell("streaming", 256, 0, 0, 0.0, -2.0),
  };
  const std::string csv = niah_summary_csv(cells);
  CHECK(csv.find("full,256,0,2,0.5000\n") != std::string::npos);
  CHECK(csv.find("full,512,100,1,1.0000\n") != std::string::npos);
  CHECK(csv.find("streaming,256,0,1,0.0000\n") != std::string::npos);
  const std::string md = niah_comparison_markdown(cells, {"full", "streaming"}, {256, 512});
  CHECK(md.find("| full | 50.0 | 100.0 | 66.7 |") != std::string::npos);
  CHECK(md.find("| streaming | 0.0 | - | 0.0 |") != std::string::npos);
  // Per-token log-prob: full 256 = mean(-0.25, -0.5); the retained table pairs streaming with full's sample 0.
  CHECK(md.find("| full | -0.375 | -0.100 | -0.283 |") != std::string::npos);
  CHECK(md.find("| streaming | -1.000 | - | -1.000 |") != std::string::npos);
  CHECK(md.find("| streaming | 47.2 | - | 47.2 |") != std::string::npos);
  CHECK(md.find("| full | 100.0 | 100.0 | 100.0 |") != std::string::npos);
  // The retained heat map's grid: [policies][lengths + "all"], NaN where full and the policy share no prompt.
  const auto kept = answer_retained_grid(niah_likelihood_records(cells), {"full", "streaming"}, {256, 512});
  REQUIRE(kept.size() == 6);
  CHECK(kept[0] == Approx(1.0));
  CHECK(kept[2] == Approx(1.0));
  CHECK(kept[3] == Approx(std::exp(-0.75)));
  CHECK(std::isnan(kept[4]));
  CHECK(kept[5] == Approx(std::exp(-0.75)));
  CHECK(answer_retained_grid(niah_likelihood_records(cells), {"streaming"}, {256}, "hylra").empty());  // no reference
  auto grid = niah_grid(cells, "full", {0, 100}, {256, 512});  // [depth][length]
  REQUIRE(grid.size() == 4);
  CHECK(grid[0] == Approx(0.5));
  CHECK(std::isnan(grid[1]));
  CHECK(std::isnan(grid[2]));
  CHECK(grid[3] == Approx(1.0));
}

TEST_CASE("eval niah end to end: cells, summary, heat maps; a second run resumes everything") {
  EvalSession session(kModel, {"full", "streaming"});
  NiahOptions o;
  o.lengths = {256, 320};
  o.depths = {0, 100};
  o.samples = 2;
  o.max_new_tokens = 4;
  o.out_dir = temp_dir("niah");
  o.engine = cpu();
  auto cells = niah_run(session, o);
  CHECK(cells.size() == 16);
  for (const auto& c : cells) CHECK(!c.resumed);
  auto j = eval_read_json(niah_cell_path(o.out_dir, "streaming", 320, 100, 1));
  REQUIRE(j);
  for (const char* key : {"model", "context_length", "depth_percent", "needle", "model_response", "score",
                          "test_duration_seconds", "policy", "sample"}) {
    CHECK(j->contains(key));
  }
  CHECK((*j)["prompt_tokens"] == 320);
  CHECK((*j)["model"] == "default");
  CHECK((*j)["value_tokens"].get<int>() > 0);  // the needle's value, teacher-forced
  CHECK((*j)["value_logprob"].get<double>() < 0);
  CHECK(fs::file_size(o.out_dir + "/heatmap_full.png") > 100);
  CHECK(fs::exists(o.out_dir + "/heatmap_streaming.png"));
  CHECK(fs::file_size(o.out_dir + "/retained.png") > 100);  // policies x lengths: streaming against full
  CHECK(line_count(o.out_dir + "/summary.csv") == 1 + 2 * 2 * 2);
  CHECK(slurp(o.out_dir + "/comparison.md").find("| streaming |") != std::string::npos);
  CHECK(slurp(o.out_dir + "/comparison.md").find("retained relative to full") != std::string::npos);
  // Same parameters: nothing reruns. A cell removed: only it reruns.
  fs::remove(niah_cell_path(o.out_dir, "full", 256, 0, 1));
  auto again = niah_run(session, o);
  size_t resumed = 0;
  for (const auto& c : again) resumed += c.resumed;
  CHECK(again.size() == 16);
  CHECK(resumed == 15);
  // Same prompts for every policy: the haystack depends on the seed and the cell, not on the policy.
  auto a = eval_read_json(niah_cell_path(o.out_dir, "full", 320, 0, 0));
  auto b = eval_read_json(niah_cell_path(o.out_dir, "streaming", 320, 0, 0));
  CHECK((*a)["needle"] == (*b)["needle"]);
  fs::remove_all(o.out_dir);
}

TEST_CASE("eval ruler end to end: per-sample JSONL, summary, resume keeps matching lines") {
  EvalSession session(kModel, {"full"});
  RulerOptions o;
  o.tasks = {"niah_single", "vt"};
  o.lengths = {384};
  o.samples = 2;
  o.max_new_tokens = 3;
  o.out_dir = temp_dir("ruler");
  o.engine = cpu();
  eval_write_file(o.out_dir + "/retained.png", "an earlier run's picture");  // removed: it would not match
  auto r = ruler_run(session, o);
  CHECK(r.size() == 4);
  const std::string file = ruler_file_path(o.out_dir, "full", "vt", 384);
  CHECK(line_count(file) == 2);
  auto lines = eval_read_jsonl(file);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["references"].size() == 5);
  CHECK(lines[0]["prompt_tokens"] == 384);
  const std::string csv = slurp(o.out_dir + "/summary.csv");
  CHECK(csv.find("policy,task,context_length,samples,string_match_all,string_match_part,exact_match") == 0);
  CHECK(csv.find("full,vt,384,2,") != std::string::npos);
  CHECK(!fs::exists(o.out_dir + "/retained.png"));  // full alone: nothing to compare, and the stale one is gone
  auto again = ruler_run(session, o);
  for (const auto& x : again) CHECK(x.resumed);
  CHECK(line_count(file) == 2);
  o.max_new_tokens = 5;  // different parameters: stale lines are replaced, not duplicated
  again = ruler_run(session, o);
  for (const auto& x : again) CHECK(!x.resumed);
  CHECK(line_count(file) == 2);
  o.tasks = {"nope"};
  CHECK_THROWS_WITH(ruler_run(session, o), Catch::Contains("unknown task 'nope'"));
  fs::remove_all(o.out_dir);
}

TEST_CASE("eval longbench on small LongBench-format files: LongBench's layout, scores, resume") {
  const std::string data = temp_dir("lb_data");
  {
    std::ofstream f(data + "/hotpotqa.jsonl");
    for (int i = 0; i < 3; ++i) {
      nlohmann::json r = {{"input", "Which city is the capital?"}, {"context", std::string(3000, 'x') + " Paris."},
                          {"answers", {"Paris"}}, {"length", 3000}, {"dataset", "hotpotqa"},
                          {"all_classes", nullptr}, {"_id", "hp" + std::to_string(i)}};
      f << r.dump() << "\n";
    }
    std::ofstream t(data + "/trec.jsonl");
    nlohmann::json r = {{"input", "What is a cat?"}, {"context", "Q: Where is Rome? Type: Location"},
                        {"answers", {"Entity"}}, {"length", 9}, {"dataset", "trec"},
                        {"all_classes", {"Entity", "Location"}}, {"_id", "t0"}};
    t << r.dump() << "\n";
    std::ofstream z(data + "/vcsum.jsonl");  // Chinese Rouge: skipped with a reason
    z << nlohmann::json({{"input", ""}, {"context", "x"}, {"answers", {"y"}}, {"length", 1}, {"dataset", "vcsum"},
                         {"all_classes", nullptr}, {"_id", "v0"}}).dump() << "\n";
  }
  EvalSession session(kModel, {"full"});
  LongBenchOptions o;
  o.data_dir = data;
  o.max_length = 200;  // forces the middle truncation of the 3000-character contexts
  o.out_dir = temp_dir("lb_out");
  o.engine = cpu();
  LongBenchReport rep = longbench_run(session, o);
  CHECK(rep.pred_dir == o.out_dir + "/pred/default");
  CHECK(line_count(rep.pred_dir + "/hotpotqa.jsonl") == 3);
  CHECK(line_count(rep.pred_dir + "/trec.jsonl") == 1);
  CHECK(!fs::exists(rep.pred_dir + "/vcsum.jsonl"));
  REQUIRE(rep.skipped.size() == 1);
  CHECK(rep.skipped[0].find("vcsum") == 0);
  auto line = eval_read_jsonl(rep.pred_dir + "/trec.jsonl").at(0);
  CHECK(line["answers"] == nlohmann::json({"Entity"}));
  CHECK(line["all_classes"] == nlohmann::json({"Entity", "Location"}));
  CHECK(line["length"] == 9);
  CHECK(line["pred"].is_string());
  auto result = eval_read_json(rep.pred_dir + "/result.json");
  REQUIRE(result);
  CHECK(result->contains("hotpotqa"));
  CHECK(result->contains("trec"));
  // Scores come from the pred files: overwrite predictions with known answers and rescore.
  {
    std::ofstream f(rep.pred_dir + "/hotpotqa.jsonl");
    f << nlohmann::json({{"pred", "Paris"}, {"answers", {"Paris"}}, {"all_classes", nullptr}, {"length", 1},
                         {"_id", "hp0"}}).dump() << "\n";
    f << nlohmann::json({{"pred", "Lyon"}, {"answers", {"Paris"}}, {"all_classes", nullptr}, {"length", 1},
                         {"_id", "hp1"}}).dump() << "\n";
  }
  std::vector<std::string> skipped;
  auto scores = longbench_score_dir(rep.pred_dir, skipped);
  CHECK(scores["hotpotqa"] == 50.0);
  // Resume: hp0 and hp1 are done, only hp2 is generated again.
  longbench_run(session, o);
  CHECK(line_count(rep.pred_dir + "/hotpotqa.jsonl") == 3);
  CHECK(line_count(rep.pred_dir + "/trec.jsonl") == 1);
  // Truncation keeps the prompt at max_length tokens (BOS + halves).
  const LongBenchDataset* ds = longbench_find_dataset("hotpotqa");
  LongBenchRecord rec = longbench_read_jsonl(data + "/hotpotqa.jsonl").at(0);
  auto ids = longbench_prompt_ids(session.tokenizer(), longbench_format_prompt(*ds, rec), false, "", 200);
  CHECK(ids.size() <= 202);
  CHECK(ids.size() >= 190);
  // A broken record names file and line.
  {
    std::ofstream bad(data + "/qasper.jsonl");
    bad << "{\"input\": \"q\"}\n";
  }
  CHECK_THROWS_WITH(longbench_run(session, o), Catch::Contains("qasper.jsonl:1: missing field \"context\""));
  fs::remove_all(data);
  fs::remove_all(o.out_dir);
}

TEST_CASE("batched decoding gives the tokens one-at-a-time decoding gives") {
  EvalSession session(kModel, {"full"});
  const EvalText& text = session.text();
  HaystackBuilder builder(session.tokenizer(), text.filler);
  std::vector<GenRequest> requests;
  for (int i = 0; i < 5; ++i) {
    GenRequest r;
    r.prompt = make_niah_sample(builder, text, 128 + 40 * i, 0.5, uint64_t(i)).prompt;
    r.max_new_tokens = 6 + i;  // different lengths: sequences leave the batch at different steps
    requests.push_back(r);
  }
  EvalEngineSettings one = cpu();
  one.batch_size = 1;
  EvalEngineSettings many = cpu();
  many.batch_size = 4;
  auto e1 = session.load_engine(session.policies()[0], 400, one);
  auto e4 = session.load_engine(session.policies()[0], 400, many);
  std::vector<size_t> order;
  auto a = eval_generate(*e1, session.tokenizer(), requests, 1, one.chunk_size);
  auto b = eval_generate(*e4, session.tokenizer(), requests, 4, many.chunk_size,
                         [&](size_t i, const GenOutput&) { order.push_back(i); });
  REQUIRE(a.size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    CHECK(a[i].tokens == b[i].tokens);
    CHECK(a[i].text == b[i].text);
    CHECK(int32_t(b[i].tokens.size()) <= requests[i].max_new_tokens);
  }
  std::sort(order.begin(), order.end());
  CHECK(order == std::vector<size_t>{0, 1, 2, 3, 4});  // every request reported once
  CHECK(e4->kv_cache().pages_free() == e4->kv_cache().n_pages());  // every sequence freed
  CHECK(e4->kv_cache().sequences().empty());
}

TEST_CASE("LongBench chat prompts go through the model's chat template; no tokenizer is a clear error") {
  EvalSession session(kModel, {"full"});
  const Tokenizer& tok = session.tokenizer();
  const std::string tmpl = tok.chat_template();
  REQUIRE(!tmpl.empty());
  auto plain = longbench_prompt_ids(tok, "Question: who?", false, "", 100);
  auto chat = longbench_prompt_ids(tok, "Question: who?", true, tmpl, 100);
  CHECK(chat.size() > plain.size());
  CHECK(tok.decode(chat, true).find("[INST]") != std::string::npos);  // Llama 2's chat format
  CHECK(tok.decode(chat, true).find("Question: who?") != std::string::npos);
  CHECK(std::count(chat.begin(), chat.end(), *tok.bos_id()) == 1);  // the template's BOS only, not a second one
  CHECK_THROWS_WITH(EvalSession(std::string(LCLLM_SOURCE_DIR) + "/tests/fixtures/parity/llama2", {"full"}),
                    Catch::Contains("no tokenizer.json or tokenizer.model"));
  CHECK_THROWS_WITH(EvalSession(kModel, {"full", "nope"}), Catch::Contains("unknown attention policy"));
  CHECK_THROWS_WITH(EvalSession(kModel, {"full", "full"}), Catch::Contains("share the output name"));
}

TEST_CASE("LongBench-E scores per length bin; an empty bin is null") {
  const std::string dir = temp_dir("lb_e");
  {
    std::ofstream f(dir + "/passage_count.jsonl");
    auto line = [&](const std::string& pred, int64_t length) {
      f << nlohmann::json({{"pred", pred}, {"answers", {"3"}}, {"all_classes", nullptr}, {"length", length}}).dump()
        << "\n";
    };
    line("3", 100);      // 0-4k: 1
    line("3 or 4", 3999);  // 0-4k: 0.5
    line("4", 9000);     // 8k+: 0
  }
  std::vector<std::string> skipped;
  auto r = longbench_score_dir_e(dir, skipped);
  CHECK(r["passage_count"]["0-4k"] == 75.0);
  CHECK(r["passage_count"]["4-8k"].is_null());
  CHECK(r["passage_count"]["8k+"] == 0.0);
  CHECK(skipped.empty());
  fs::remove_all(dir);
}

TEST_CASE("teacher-forced answers: the log-prob equals a prefill over prompt + answer, and generation is unchanged") {
  EvalSession session(kModel, {"full"});
  auto engine = session.load_engine(session.policies()[0], 256, cpu(), 2, 8);
  const Tokenizer& tok = session.tokenizer();
  const std::vector<int32_t> prompt = tok.encode("The capital of France is Paris. The capital of Spain is", true);
  const std::vector<int32_t> answer = tok.encode(" Madrid, and of Italy Rome", false);
  REQUIRE(answer.size() >= 4);
  GenRequest plain;
  plain.prompt = prompt;
  plain.max_new_tokens = 6;
  GenRequest scored = plain;
  scored.forced = answer;
  GenRequest only_scored = scored;
  only_scored.max_new_tokens = 0;
  std::vector<size_t> done_order;
  auto out = eval_generate(*engine, tok, {plain, scored, only_scored}, 2, cpu().chunk_size,
                           [&](size_t i, const GenOutput&) { done_order.push_back(i); });
  REQUIRE(out.size() == 3);
  CHECK(done_order.size() == 3);  // each request reported once, after both of its sequences finished
  CHECK(std::isnan(out[0].forced_logprob));
  CHECK(out[1].tokens == out[0].tokens);  // the fork does not disturb the generator
  CHECK(out[1].forced_tokens == int32_t(answer.size()));
  CHECK(out[2].tokens.empty());
  // Reference: one sequence fed prompt + answer with every position's logits; sum ln softmax at the answer ids.
  const int32_t seq = engine->create_sequence();
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), answer.begin(), answer.end());
  const std::vector<float> logits = engine->feed(seq, all, true);  // [all tokens, vocab]
  engine->free_sequence(seq);
  const size_t vocab = size_t(engine->config().vocab_size);
  double ref = 0;
  for (size_t i = 0; i < answer.size(); ++i) {
    const size_t row = prompt.size() - 1 + i;
    ref += log_softmax_at(std::span<const float>(logits.data() + row * vocab, vocab), answer[i]);
  }
  CHECK(ref < 0);
  CHECK(out[1].forced_logprob == Approx(ref).epsilon(1e-4));
  CHECK(out[2].forced_logprob == Approx(out[1].forced_logprob).epsilon(1e-6));
  // Every sequence was freed: the whole cache is free again.
  CHECK(engine->kv_cache().pages_free() == engine->kv_cache().n_pages());
  CHECK(engine->kv_cache().sequences().empty());
}

TEST_CASE("log_softmax_at is ln softmax, stable for large logits") {
  const std::vector<float> logits = {1000.0f, 1000.0f + std::log(3.0f)};
  CHECK(log_softmax_at(logits, 0) == Approx(std::log(0.25)));
  CHECK(log_softmax_at(logits, 1) == Approx(std::log(0.75)).epsilon(1e-4));  // 1000 + ln 3 in float
}

TEST_CASE("eval with a larger --batch-size than requests, answers scored: the engine's step holds what runs",
          "[eval]") {
  EvalSession session(kModel, {"full"});
  const Tokenizer& tok = session.tokenizer();
  EvalEngineSettings wide = cpu();
  wide.batch_size = 8;  // more than the 3 requests the engine is sized for (as niah and ruler size it)
  auto engine = session.load_engine(session.policies()[0], 256, wide, 3, 8);
  GenRequest r;
  r.prompt = tok.encode("The capital of France is Paris. The capital of Spain is", true);
  r.max_new_tokens = 4;
  r.forced = tok.encode(" Madrid", false);
  const std::vector<GenOutput> out = eval_generate(*engine, tok, {r, r, r}, wide.batch_size, wide.chunk_size);
  REQUIRE(out.size() == 3);
  CHECK(out[0].tokens == out[2].tokens);
  CHECK(out[1].forced_logprob == Approx(out[0].forced_logprob));
  CHECK(std::isfinite(out[0].forced_logprob));
}
