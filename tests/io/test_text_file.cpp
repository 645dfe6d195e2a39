// read_text_file: the bounded reader of config, tokenizer, plan, template and key files (E12 item 4).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>

#include <catch2/catch.hpp>

#include "io/json_file.h"
#include "io/text_file.h"
#include "lcllm/error.h"

using namespace lcllm;

TEST_CASE("read_text_file reads regular files and refuses FIFOs, devices, directories and oversized files at once",
          "[io][text_file]") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("lcllm_text_file_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string ok = (dir / "ok.json").string();
  std::ofstream(ok) << "{\"a\": 1}";
  CHECK(read_text_file(ok, "model config", 1024) == "{\"a\": 1}");
  CHECK_THROWS_WITH(read_text_file(ok, "model config", 4), Catch::Contains("limit is 4"));
  CHECK_THROWS_WITH(read_text_file((dir / "missing").string(), "model config", 1024), Catch::Contains("no such file"));
  CHECK_THROWS_WITH(read_text_file(dir.string(), "model config", 1024), Catch::Contains("not a regular file"));
  CHECK_THROWS_WITH(read_text_file("/dev/zero", "chat template", 1024), Catch::Contains("not a regular file"));
  // A FIFO with no writer would block open() forever: it must be refused without opening it.
  const std::string fifo = (dir / "fifo").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto refused = std::async(std::launch::async, [&] {
    try {
      read_text_file(fifo, "API key file", 1024);
    } catch (const Error& e) {
      return std::string(e.what()).find("not a regular file") != std::string::npos;
    }
    return false;
  });
  const bool answered = refused.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  if (!answered) {  // the reader blocked: give it a writer that closes at once, so the test fails instead of hanging
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  CHECK(answered);
  CHECK(refused.get());
  std::filesystem::remove_all(dir);
}

TEST_CASE("json_parse_bounded refuses deep nesting while parsing, at any depth up to 100,000, and parses the rest",
          "[io][json]") {
  CHECK(json_parse_bounded(R"({"a": [1, {"b": [2]}]})", "x.json").at("a").at(1).at("b").at(0) == 2);
  for (int depth : {65, 1000, 100000}) {
    const std::string deep = std::string(size_t(depth), '[') + std::string(size_t(depth), ']');
    INFO("depth " << depth);
    CHECK_THROWS_WITH(json_parse_bounded(deep, "config.json"), Catch::Contains("deeper than 64 levels"));
  }
  const std::string ok_deep = std::string(64, '[') + std::string(64, ']');
  CHECK_NOTHROW(json_parse_bounded(ok_deep, "config.json"));
  CHECK_THROWS_WITH(json_parse_bounded("{not json", "config.json"), Catch::Contains("not valid JSON"));
}
