#include "eval/tasks.h"

#include <algorithm>
#include <set>

#include "lcllm/error.h"

namespace lcllm {

namespace {

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? sep : "") + items[i];
  return s;
}

// RULER places needles at depths drawn from 40 evenly spaced points in [0, 100] (its niah.py DEPTHS); k distinct
// ones, as fractions.
std::vector<double> random_depths(EvalRng& rng, size_t k) {
  std::vector<size_t> pick = rng.sample(40, k);
  std::vector<double> d;
  for (size_t p : pick) d.push_back(double(p) / 39.0);
  return d;
}

std::vector<std::string> distinct_values(EvalRng& rng, int32_t digits, size_t n) {
  std::set<std::string> seen;
  std::vector<std::string> out;
  while (out.size() < n) {
    std::string v = eval_random_value(rng, digits);
    if (seen.insert(v).second) out.push_back(v);
  }
  return out;
}

std::vector<std::string> pick(EvalRng& rng, const std::vector<std::string>& pool, size_t n, const char* what) {
  if (pool.size() < n) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                std::string("the task needs ") + std::to_string(n) + " distinct " + what + " but the list has " +
                    std::to_string(pool.size()));
  }
  std::vector<std::string> out;
  for (size_t i : rng.sample(pool.size(), n)) out.push_back(pool[i]);
  return out;
}

// Builds the haystack and fills the sample's prompt, needle order and depths (order of appearance).
void place(TaskSample& s, const HaystackBuilder& builder, int32_t length, const std::string& preamble,
           const std::vector<std::string>& needles, const std::vector<double>& depths, const std::string& query,
           uint64_t seed) {
  HaystackRequest req;
  req.total_tokens = length;
  req.preamble = preamble;
  req.query = query;
  req.seed = seed;
  for (size_t i = 0; i < needles.size(); ++i) req.inserts.push_back({needles[i], depths[i]});
  Haystack h = builder.build(req);
  std::vector<size_t> order(needles.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return h.insert_pos[a] < h.insert_pos[b]; });
  s.prompt = std::move(h.ids);
  s.query = query;
  for (size_t i : order) {
    s.needles.push_back(needles[i]);
    s.depths.push_back(h.insert_depth[i]);
  }
}

std::string needle_text(const EvalText& t, const std::string& key, const std::string& value) {
  return eval_fill(t.needle, {{"key", key}, {"value", value}});
}

TaskSample make_cwe(const HaystackBuilder& builder, const EvalText& text, int32_t length, uint64_t seed,
                    const TaskSizes& sizes) {
  EvalRng rng(seed);
  const Tokenizer& tok = builder.tokenizer();
  // RULER (common_words_extraction.py): 10 common words x 30 plus uncommon words x 3; shorter prompts use 2 and 1
  // so the common words still fit (our choice, DECISIONS.md).
  const bool small = length < 4096;
  const int32_t freq_cw = small ? 2 : 30;
  const int32_t freq_ucw = small ? 1 : 3;
  std::vector<std::string> vocab = text.cwe_words;
  rng.shuffle(vocab);
  if (int32_t(vocab.size()) < sizes.cwe_common + 2) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "cwe needs more words than the cwe word list has");
  }
  std::vector<std::string> common(vocab.begin(), vocab.begin() + sizes.cwe_common);
  std::vector<std::string> rare_pool(vocab.begin() + sizes.cwe_common, vocab.end());
  // Beyond the list: hyphenated pairs of rare words (never containing a common word).
  auto rare_word = [&](size_t i) {
    const size_t n = rare_pool.size();
    if (i < n) return rare_pool[i];
    const size_t j = i - n;
    return rare_pool[(j / n) % n] + "-" + rare_pool[j % n];
  };
  const std::string head =
      "Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that "
      "appear most often.\n";
  const std::string query = "\nQuestion: What are the " + std::to_string(sizes.cwe_common) +
                            " most common words in the above list? Answer: The top " +
                            std::to_string(sizes.cwe_common) + " words that appear most often in the list are:";
  auto build = [&](size_t n_rare) {
    std::vector<std::string> items;
    for (const auto& w : common) for (int32_t k = 0; k < freq_cw; ++k) items.push_back(w);
    for (size_t i = 0; i < n_rare; ++i) for (int32_t k = 0; k < freq_ucw; ++k) items.push_back(rare_word(i));
    EvalRng order_rng(seed ^ 0xC3EULL);
    order_rng.shuffle(items);
    std::string list;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) list += '\n';
      list += std::to_string(i + 1);
      list += ". ";
      list += items[i];
    }
    return std::make_pair(head + list + query, items);
  };
  // The most rare words that fit (token count is monotone in the word count): binary search.
  size_t lo = 0, hi = 1;
  auto fits = [&](size_t n) { return int64_t(tok.encode(build(n).first, true).size()) <= length; };
  if (!fits(0)) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT,
                "cwe: " + std::to_string(length) + " tokens cannot hold the common words; use a longer length");
  }
  while (fits(hi)) { lo = hi; hi *= 2; }
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  auto [prompt_text, items] = build(lo);
  TaskSample s;
  s.task = "cwe";
  s.prompt = tok.encode(prompt_text, true);
  s.query = query;
  // The answer lists the common words in order of first appearance.
  std::vector<std::string> order;
  for (const auto& w : items) {
    if (std::find(common.begin(), common.end(), w) != common.end() &&
        std::find(order.begin(), order.end(), w) == order.end()) {
      order.push_back(w);
    }
  }
  s.answer = join(order, text.answer_separator);
  s.references = order;
  return s;
}

}  // namespace

std::vector<std::string> ruler_task_names() {
  return {"niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery", "vt", "cwe"};
}

std::string eval_random_value(EvalRng& rng, int32_t digits) {
  std::string v(1, char('1' + rng.below(9)));
  for (int32_t i = 1; i < digits; ++i) v += char('0' + rng.below(10));
  return v;
}

TaskSample make_niah_sample(const HaystackBuilder& builder, const EvalText& text, int32_t length, double depth,
                            uint64_t seed) {
  EvalRng rng(seed);
  TaskSample s;
  s.task = "niah";
  const std::string key = text.keys[rng.below(text.keys.size())];
  const std::string value = eval_random_value(rng, text.value_digits);
  place(s, builder, length, text.preamble_niah, {needle_text(text, key, value)}, {depth},
        eval_fill(text.query_single, {{"key", key}}), rng.next());
  s.answer = value;
  s.references = {value};
  return s;
}

TaskSample make_ruler_sample(const std::string& task, const HaystackBuilder& builder, const EvalText& text,
                             int32_t length, uint64_t seed, const TaskSizes& sizes) {
  EvalRng rng(seed);
  TaskSample s;
  s.task = task;
  const std::string& sep = text.answer_separator;
  if (task == "niah_single") {
    const std::string key = pick(rng, text.keys, 1, "keys")[0];
    const std::string value = eval_random_value(rng, text.value_digits);
    place(s, builder, length, text.preamble_niah, {needle_text(text, key, value)}, random_depths(rng, 1),
          eval_fill(text.query_single, {{"key", key}}), rng.next());
    s.answer = value;
    s.references = {value};
  } else if (task == "niah_multikey") {
    // One queried needle among distractors with other keys (RULER niah_multikey_1).
    const auto keys = pick(rng, text.keys, size_t(sizes.multikey_keys), "keys");
    const auto values = distinct_values(rng, text.value_digits, keys.size());
    std::vector<std::string> needles;
    for (size_t i = 0; i < keys.size(); ++i) needles.push_back(needle_text(text, keys[i], values[i]));
    place(s, builder, length, text.preamble_niah, needles, random_depths(rng, keys.size()),
          eval_fill(text.query_single, {{"key", keys[0]}}), rng.next());
    s.answer = values[0];
    s.references = {values[0]};
  } else if (task == "niah_multivalue") {
    const std::string key = pick(rng, text.keys, 1, "keys")[0];
    const auto values = distinct_values(rng, text.value_digits, size_t(sizes.multivalue_values));
    std::vector<std::string> needles;
    for (const auto& v : values) needles.push_back(needle_text(text, key, v));
    place(s, builder, length, text.preamble_niah, needles, random_depths(rng, values.size()),
          eval_fill(text.query_multivalue, {{"key", key}}), rng.next());
    // Values in order of appearance: recover each from its needle's position.
    std::vector<std::string> ordered;
    for (const auto& n : s.needles) {
      for (const auto& v : values) {
        if (n == needle_text(text, key, v)) ordered.push_back(v);
      }
    }
    s.answer = join(ordered, sep);
    s.references = ordered;
  } else if (task == "niah_multiquery") {
    const auto keys = pick(rng, text.keys, size_t(sizes.multiquery_queries), "keys");
    const auto values = distinct_values(rng, text.value_digits, keys.size());
    std::vector<std::string> needles;
    for (size_t i = 0; i < keys.size(); ++i) needles.push_back(needle_text(text, keys[i], values[i]));
    // The query names the keys in a shuffled order; the answer follows the query's order.
    std::vector<size_t> qorder(keys.size());
    for (size_t i = 0; i < qorder.size(); ++i) qorder[i] = i;
    rng.shuffle(qorder);
    std::vector<std::string> qkeys, qvalues;
    for (size_t i : qorder) {
      qkeys.push_back(keys[i]);
      qvalues.push_back(values[i]);
    }
    place(s, builder, length, text.preamble_niah, needles, random_depths(rng, keys.size()),
          eval_fill(text.query_multiquery, {{"keys", join(qkeys, sep)}}), rng.next());
    s.answer = join(qvalues, sep);
    s.references = qvalues;
  } else if (task == "vt") {
    // One chain: VAR a = value, VAR b = VAR a, ... at increasing depths, so the chain reads in order.
    const auto vars = pick(rng, text.vt_names, size_t(sizes.vt_hops) + 1, "variable names");
    const std::string value = eval_random_value(rng, text.value_digits);
    std::vector<std::string> needles{eval_fill(text.vt_assign, {{"var", vars[0]}, {"value", value}})};
    for (size_t i = 1; i < vars.size(); ++i) {
      needles.push_back(eval_fill(text.vt_copy, {{"var", vars[i]}, {"src", vars[i - 1]}}));
    }
    std::vector<double> depths = random_depths(rng, vars.size());
    std::sort(depths.begin(), depths.end());
    place(s, builder, length, text.preamble_vt, needles, depths, eval_fill(text.query_vt, {{"value", value}}),
          rng.next());
    s.answer = join(vars, sep);
    s.references = vars;
  } else if (task == "cwe") {
    return make_cwe(builder, text, length, seed, sizes);
  } else {
    std::string known;
    for (const auto& n : ruler_task_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error(ErrorKind::ERROR_KIND_INVALID_ARGUMENT, "unknown RULER task '" + task + "' (known: " + known + ")");
  }
  return s;
}

}  // namespace lcllm
