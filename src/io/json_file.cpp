#include "io/json_file.h"

#include "lcllm/error.h"

namespace lcllm {

namespace {
struct TooDeep {};  // thrown out of the parser callback: aborts the parse at once
}  // namespace

nlohmann::json json_parse_bounded(std::string_view text, const std::string& origin, int max_depth) {
  using json = nlohmann::json;
  const json::parser_callback_t bound = [max_depth](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) && depth >= max_depth) {
      throw TooDeep{};
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), bound);
  } catch (const TooDeep&) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE,
                origin + ": nests arrays/objects deeper than " + std::to_string(max_depth) + " levels");
  } catch (const json::exception& e) {
    throw Error(ErrorKind::ERROR_KIND_INVALID_FILE, origin + ": not valid JSON: " + e.what());
  }
}

}  // namespace lcllm
