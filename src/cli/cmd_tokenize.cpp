// `lcllm tokenize --tokenizer DIR_OR_FILE [--special] [--decode] [--skip-special]`: a prompt debugging tool.
// Encoding reads JSON Lines of strings on stdin and writes one JSON array of ids per line; --decode reads JSON
// arrays of ids and writes one JSON string per line. A bad line stops the command with its line number on stderr
// and exit code 2.
#include <cstdio>
#include <iostream>
#include <limits>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "lcllm/error.h"
#include "tokenizer/tokenizer.h"

namespace lcllm {

namespace {

struct TokenizeOptions {
  std::string tokenizer;
  bool special = false;
  bool decode = false;
  bool skip_special = false;
};

int bad_line(std::size_t line_no, const std::string& what) {
  std::fprintf(stderr, "lcllm tokenize: stdin line %zu: %s\n", line_no, what.c_str());
  return 2;
}

int run_tokenize(const TokenizeOptions& o) {
  std::unique_ptr<Tokenizer> tok;
  try {
    tok = Tokenizer::load(o.tokenizer);
  } catch (const Error& e) {
    std::fprintf(stderr, "lcllm tokenize: %s\n", e.what());
    return 2;
  }
  std::ios::sync_with_stdio(false);
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are skipped
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      return bad_line(line_no, std::string("not valid JSON: ") + e.what());
    }
    if (!o.decode) {
      if (!j.is_string()) return bad_line(line_no, "expected a JSON string");
      const auto ids = tok->encode(j.get_ref<const std::string&>(), o.special);
      std::cout << nlohmann::json(ids).dump() << '\n';
    } else {
      if (!j.is_array()) return bad_line(line_no, "expected a JSON array of token ids");
      std::vector<int32_t> ids;
      ids.reserve(j.size());
      for (std::size_t i = 0; i < j.size(); ++i) {
        const auto& v = j[i];
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tok->vocab_size())
          return bad_line(line_no, "element " + std::to_string(i) + " is not a token id in [0, " +
                                       std::to_string(tok->vocab_size()) + ")");
        ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
      }
      const std::string text = tok->decode(ids, o.skip_special);
      std::cout << nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    }
    std::cout.flush();
  }
  return 0;
}

}  // namespace

CliHandler cli_add_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Encode JSON Lines of strings from stdin to JSON arrays of token ids (one per line), or decode with --decode. "
      "Blank lines are skipped; a malformed line stops with its line number on stderr and exit code 2.");
  cmd->add_option("--tokenizer", o->tokenizer,
                  "Model directory (tokenizer.json preferred, else tokenizer.model; tokenizer_config.json is read "
                  "when present) or a direct path to a tokenizer.json / tokenizer.model file")
      ->required();
  cmd->add_flag("--special", o->special,
                "Encoding: add the special tokens the tokenizer's post-processor defines (e.g. BOS), like HF "
                "encode(text, add_special_tokens=True). Special-token text inside the strings is always matched.");
  cmd->add_flag("--decode", o->decode,
                "Decode instead: each stdin line is a JSON array of ids; each output line is a JSON string");
  cmd->add_flag("--skip-special", o->skip_special,
                "Decoding: drop special tokens (BOS, EOS, <|eot_id|>, ...) from the text instead of writing them");
  return [cmd, o]() -> int { return cmd->parsed() ? run_tokenize(*o) : -1; };
}

}  // namespace lcllm
