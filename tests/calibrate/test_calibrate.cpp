// Calibration (src/calibrate): the copy-paste retrieval rule, the HyLRA loss and top-k overlap on hand-made
// attention, the TidalDecode re-selection choice, needle probes, and an end-to-end run on the default model whose
// plans and report load.
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "attention/attention_plan_json.h"
#include "calibrate/attention_stats.h"
#include "calibrate/calibrate.h"
#include "calibrate/needle_probe.h"
#include "lcllm/error.h"
#include "tokenizer/tokenizer.h"

using namespace lcllm;

namespace {

// 2 layers x 2 KV heads over 6 keys; each (l, h) row puts mass `peak` on one position, the rest spread evenly.
StepAttention peaked(const std::vector<int32_t>& argmax, float peak = 0.75f) {
  StepAttention a;
  a.n_layers = 2;
  a.n_kv_heads = 2;
  a.n_keys = 6;
  a.mass.assign(24, (1.f - peak) / 5.f);
  for (int32_t i = 0; i < 4; ++i) a.mass[size_t(i) * 6 + size_t(argmax[size_t(i)])] = peak;
  return a;
}

}  // namespace

TEST_CASE("retrieval score: a head scores when its arg-max is the needle token being copied", "[calibrate]") {
  CalibrationStats s(2, 2);
  const std::vector<int32_t> tokens = {10, 11, 12, 13, 14, 15};  // needle = positions [2, 4): tokens 12, 13
  s.begin_probe();
  // Step 1 copies 12 (position 2): heads (0,0) right; (0,1) looks at 13 (wrong token); (1,0) at position 5 (outside);
  // (1,1) right.
  s.add_step(peaked({2, 3, 5, 2}), tokens, 12, 2, 4, 1);
  // Step 2 copies 13 (position 3): (0,0) and (0,1) right, (1,*) wrong.
  s.add_step(peaked({3, 3, 0, 2}), tokens, 13, 2, 4, 1);
  s.end_probe(2);
  const std::vector<double> want = {1.0, 0.5, 0.0, 0.5};  // [layer * 2 + head]
  CHECK(s.retrieval_scores() == want);
  // A second probe where nothing copies halves every score (scores average over probes).
  s.begin_probe();
  s.add_step(peaked({0, 0, 0, 0}), tokens, 12, 2, 4, 1);
  s.end_probe(2);
  const std::vector<double> half = {0.5, 0.25, 0.0, 0.25};
  CHECK(s.retrieval_scores() == half);
}

TEST_CASE("HyLRA loss and top-k overlap from hand-made attention", "[calibrate]") {
  CalibrationStats s(2, 2);
  const std::vector<int32_t> tokens(6, 0);
  // Layer 0 heads peak at 1 and 4; layer 1 heads peak at 1 (same as layer 0 head 0) and 2 (differs).
  s.add_step(peaked({1, 4, 1, 2}, 0.75f), tokens, 0, 0, 0, 1);
  const auto loss = s.loss(), overlap = s.overlap();
  // Own top-1 keeps the peak: loss 0.25 on every layer.
  CHECK(loss[0] == Approx(0.25));
  CHECK(loss[3] == Approx(0.25));
  // Layer 1 reusing layer 0's top-1: head 0 keeps 0.75 (loss 0.25), head 1 keeps 0.05 (loss 0.95); mean 0.6.
  CHECK(loss[2] == Approx(0.6));
  CHECK(overlap[2] == Approx(0.5));  // one of the two heads shares its top-1
  CHECK(overlap[0] == Approx(1.0));
  CHECK(std::isnan(loss[1]));  // j > l: no data
}

TEST_CASE("TidalDecode re-selection: the layer whose selection the later layers keep best", "[calibrate]") {
  ModelConfig c;
  c.n_layers = 6;
  c.layers.resize(6);
  std::vector<double> loss(36, 1.0);
  auto set = [&](int l, int j, double v) { loss[size_t(l) * 6 + size_t(j)] = v; };
  // Selection at 2. Layers 3-5 reusing 2 lose 0.1, 0.6, 0.6; reusing 4, layer 5 loses 0.05; reusing 3, 0.5 each.
  set(3, 2, 0.1);
  set(4, 2, 0.6);
  set(5, 2, 0.6);
  set(5, 4, 0.05);
  set(4, 3, 0.5);
  set(5, 3, 0.5);
  // r = 4: 0.9 (layer 3) + 1 (layer 4 full) + 0.95 = 2.85; r = 3: 1 + 0.5 + 0.5 = 2.0; r = 5: 0.9 + 0.4 + 1 = 2.3.
  CHECK(tidal_best_reselect_layer(loss, c, 2) == 4);
  c.layers[4].sliding_window = 64;  // a local layer cannot re-select: r = 5 now beats r = 3
  CHECK(tidal_best_reselect_layer(loss, c, 2) == 5);
}

TEST_CASE("needle probes: the answer's tokens sit at value_begin; depths spread", "[calibrate]") {
  const auto tok = Tokenizer::load(std::string(LCLLM_SOURCE_DIR) + "/models/default");
  const auto probes = needle_probes_build(*tok, 3, 200, 9);
  REQUIRE(probes.size() == 3);
  CHECK(probes[0].depth == Approx(0.1));
  CHECK(probes[2].depth == Approx(0.9));
  for (const auto& p : probes) {
    REQUIRE(!p.answer.empty());
    CHECK(std::abs(int(p.context.size()) - 200) <= 8);
    CHECK(std::equal(p.answer.begin(), p.answer.end(), p.context.begin() + p.value_begin));
  }
  CHECK(probes[0].value_begin < probes[2].value_begin);
  CHECK_THROWS_AS(needle_probes_build(*tok, 3, 10, 9), lcllm::Error);
}

TEST_CASE("calibrate runs end to end on the default model; its plans and report load", "[calibrate]") {
  CalibrateOptions o;
  o.model = std::string(LCLLM_SOURCE_DIR) + "/models/default";
  o.probes = 2;
  o.context_tokens = 96;
  o.threads = 2;
  size_t calls = 0, last_total = 0;
  const CalibrationResult r = calibrate_run(o, [&](size_t, size_t total) { ++calls, last_total = total; });
  CHECK(calls == last_total);
  const int32_t L = r.config.n_layers, H = r.config.n_kv_heads;
  CHECK(r.retrieval_scores.size() == size_t(L * H));
  CHECK(r.decode_steps == int64_t(r.probes[0].answer.size() + r.probes[1].answer.size()));
  for (int32_t l = 0; l < L; ++l) {
    for (int32_t j = 0; j <= l; ++j) {
      const double v = r.loss[size_t(l * L + j)];
      CHECK((v >= 0.0 && v <= 1.0));
    }
  }
  const auto dir = std::filesystem::temp_directory_path() / "lcllm_test_calibrate";
  std::filesystem::create_directories(dir);
  for (const auto& kind : calibration_plan_kinds()) {
    const std::string path = (dir / (kind + ".json")).string();
    const auto files = calibration_write(r, o, kind, path);
    CHECK(files.size() == 4);
    for (const auto& f : files) CHECK(std::filesystem::file_size(f) > 0);
    const AttentionPlan plan = attention_plan_load(path, r.config);
    CHECK(plan.name == kind);
  }
  std::ifstream in(dir / "hylra.report.json");
  const auto report = nlohmann::json::parse(in);
  CHECK(report.at("retrieval_scores").size() == size_t(L));
  CHECK(report.at("plans").size() == 3);
  std::filesystem::remove_all(dir);
}

TEST_CASE("retrieval score per query head: a KV head scores as its best query head (GQA)", "[calibrate]") {
  CalibrationStats s(1, 1);
  const std::vector<int32_t> tokens = {10, 11, 12, 13, 14, 15};  // needle = positions [2, 4)
  StepAttention a;
  a.n_layers = 1;
  a.n_kv_heads = 1;
  a.n_keys = 6;
  a.group = 4;
  a.mass.assign(6, 0.f);
  a.mass[0] = 0.9f;  // the group's mean is dominated by the sink: its arg-max is position 0
  a.mass[2] = 0.1f;
  s.begin_probe();
  a.head_argmax = {0, 2, 0, 0};  // one query head copies 12 from position 2
  s.add_step(a, tokens, 12, 2, 4, 1);
  a.head_argmax = {0, 0, 3, 0};  // another copies 13
  s.add_step(a, tokens, 13, 2, 4, 1);
  s.end_probe(2);
  // Each copying query head scores 0.5; the KV head takes the best (0.5), where the mean row scored 0.
  CHECK(s.retrieval_scores() == std::vector<double>{0.5});
}

TEST_CASE("needle recall: the share of the needle's positions in each layer's top-k at copying steps", "[calibrate]") {
  CalibrationStats s(2, 2);
  const std::vector<int32_t> tokens = {10, 11, 12, 13, 14, 15};  // needle = positions [2, 4)
  s.begin_probe();
  // Top-1 sets: layer 0 heads pick 2 and 5; layer 1 heads pick 3 and 3.
  s.add_step(peaked({2, 5, 3, 3}), tokens, 12, 2, 4, 1);
  s.add_step(peaked({0, 0, 0, 0}), tokens, 0, 0, 0, 1);  // a step that copies nothing does not count
  s.end_probe(2);
  const auto r = s.needle_recall();
  CHECK(r[0] == Approx(0.25));  // (1/2 + 0) / 2 heads
  CHECK(r[1] == Approx(0.5));   // (1/2 + 1/2) / 2
}
