// Built-in task text for models without lcllm_eval.json. The filler is plain, self-contained sentences (RULER's
// "noise" haystack idea: text that carries no information about the needles); keys and common words are everyday
// English words; the templates follow RULER's English task wording.
#include "eval/eval_rng.h"
#include "eval/eval_text.h"

namespace lcllm {

namespace {

const char* const kFiller[] = {
    "The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.", "There and back again.",
    "The river runs past the old mill.", "A small boat drifts along the shore.", "The baker opens his shop at dawn.",
    "Snow covers the hills in winter.", "The children play in the park after school.",
    "A cat sleeps on the warm windowsill.", "The train leaves the station on time.",
    "Rain falls softly on the roof.", "The market is busy on Saturday morning.", "An owl calls from the tall pine.",
    "The library closes early on Sunday.", "Fresh bread smells good in the morning.",
    "The road winds through the quiet valley.", "A gentle wind moves the leaves.",
    "The farmer checks the fence every evening.", "Bees visit the flowers in the garden.",
    "The lamp on the desk gives a warm light.", "Waves roll onto the sandy beach.",
    "The clock in the hall strikes noon.", "A dog waits by the front door.", "The kettle whistles in the kitchen.",
    "Clouds gather over the distant mountains.", "The teacher writes on the board.",
    "A bicycle leans against the wall.", "The orchard is full of ripe apples.", "Stars shine over the calm lake.",
    "The bridge crosses a narrow stream.", "Farmers bring their vegetables to town.",
    "The museum shows paintings from many countries.", "A robin builds a nest in the hedge.",
    "The ferry carries cars across the bay.", "Smoke rises from the chimney.",
    "The choir sings in the old church.", "A path leads up to the lighthouse.", "The shop sells maps and postcards.",
    "Frogs croak near the pond at night.", "The baker sells warm rolls.", "A soft rain keeps the fields green.",
    "The fisherman mends his net on the pier.", "Autumn leaves turn red and gold.",
    "The village square has a stone fountain.", "Students read quietly in the hall.",
    "A kite flies high above the meadow.", "The moon rises over the harbor.", "Tea is served in the afternoon.",
    "The gardener waters the roses.", "A squirrel gathers nuts for winter.", "The bus stops at the corner.",
    "Sheep graze on the green hillside.", "The painter mixes blue and white.", "A candle burns on the table.",
    "The mail arrives before lunch.", "Horses rest in the shade of the barn.", "The city lights glow at night.",
    "A quiet street runs behind the school.",
};

const char* const kKeys[] = {
    "apple", "river", "candle", "forest", "marble", "violin", "harbor", "pepper", "lantern", "meadow", "copper",
    "falcon", "garden", "island", "jacket", "kettle", "ladder", "mirror", "needle", "orchid", "pillow", "quartz",
    "rabbit", "saddle", "tunnel", "umbrella", "valley", "walnut", "yogurt", "zephyr", "anchor", "basket", "cactus",
    "dolphin", "engine", "feather", "glacier", "hammer", "igloo", "jungle", "kitten", "lemon", "magnet", "nectar",
    "oyster", "parrot", "quiver", "rocket", "salmon", "tomato", "unicorn", "velvet", "window", "yacht", "zebra",
    "almond", "beacon", "cobalt", "dragon", "ember", "fossil", "granite", "helmet", "indigo", "jasmine", "kayak",
    "lizard", "mango", "nutmeg", "olive", "pebble", "quill", "raven", "sparrow", "thistle", "urchin", "vessel",
    "willow", "yarrow", "zinnia", "acorn", "bamboo", "cherry", "daisy", "eagle", "fern", "ginger", "hazel", "iris",
    "juniper", "kiwi", "lotus", "maple", "nickel", "onyx", "peach", "quince", "ruby", "sage", "tulip", "amber",
    "bison", "cedar", "delta", "elm", "fig", "gazelle", "heron",
};

// Common-words task vocabulary (RULER draws its words from the wonderwords lists; this is our own list).
const char* const kCweWords[] = {
    "table", "chair", "window", "garden", "river", "mountain", "cloud", "stone", "paper", "pencil", "bottle",
    "basket", "mirror", "pillow", "blanket", "ladder", "bucket", "hammer", "candle", "wallet", "button", "carpet",
    "curtain", "drawer", "engine", "feather", "glove", "helmet", "island", "jacket", "kettle", "lemon", "magnet",
    "needle", "orange", "pepper", "pocket", "rabbit", "saddle", "ticket", "tunnel", "violin", "wagon", "yellow",
    "anchor", "barrel", "cactus", "desert", "falcon", "forest", "ginger", "harbor", "insect", "jungle", "kitten",
    "lantern", "meadow", "napkin", "oyster", "parrot", "puzzle", "rocket", "salmon", "shovel", "spider", "teapot",
    "turtle", "velvet", "walnut", "zipper", "almond", "beetle", "bridge", "castle", "cherry", "copper", "cotton",
    "dragon", "fabric", "finger", "fossil", "garlic", "hollow", "jigsaw", "kernel", "ladle", "marble", "mitten",
    "muffin", "nickel", "noodle", "parcel", "pebble", "pigeon", "pretzel", "quartz", "raisin", "ribbon", "rubber",
    "sailor", "sandal", "silver", "sponge", "string", "summer", "temple", "thread", "timber", "tomato", "towel",
    "valley", "vessel", "winter", "wizard", "yogurt", "bamboo", "biscuit", "blossom", "cabbage", "compass",
    "diamond", "dolphin", "festival", "giraffe", "glacier", "hamster", "horizon", "lobster", "mushroom",
    "notebook", "octopus", "penguin", "pumpkin", "sandwich", "scissors", "squirrel", "strawberry", "telescope",
    "tornado", "umbrella", "volcano",
};

}  // namespace

EvalText eval_text_defaults() {
  EvalText t;
  t.filler.assign(std::begin(kFiller), std::end(kFiller));
  t.keys.assign(std::begin(kKeys), std::end(kKeys));
  t.cwe_words.assign(std::begin(kCweWords), std::end(kCweWords));
  t.value_digits = 7;  // RULER's numbers are 7 digits
  t.needle = "One of the special magic numbers for {key} is: {value}.";
  t.query_single =
      "What is the special magic number for {key} mentioned in the provided text? The special magic number for "
      "{key} mentioned in the provided text is";
  t.query_multivalue =
      "What are all the special magic numbers for {key} mentioned in the provided text? The special magic "
      "numbers for {key} mentioned in the provided text are";
  t.query_multiquery =
      "What are all the special magic numbers for {keys} mentioned in the provided text? The special magic "
      "numbers for {keys} mentioned in the provided text are";
  // RULER's variable names are 5 random capital letters; a fixed seed keeps the list stable across runs.
  EvalRng rng(0x5652ULL);
  while (t.vt_names.size() < 100) {
    std::string name;
    for (int i = 0; i < 5; ++i) name += char('A' + rng.below(26));
    bool dup = false;
    for (const auto& n : t.vt_names) dup = dup || n == name;
    if (!dup) t.vt_names.push_back(name);
  }
  t.vt_assign = "VAR {var} = {value}.";
  t.vt_copy = "VAR {var} = VAR {src}.";
  t.query_vt =
      "Question: Find all variables that are assigned the value {value} in the text above. Answer: According to the "
      "chain of variable assignment in the text above, the variables assigned the value {value} are";
  t.answer_separator = ", ";
  t.preamble_niah =
      "Some special magic numbers are hidden within the following text. Make sure to memorize it. I will quiz you "
      "about the numbers afterwards.";
  t.preamble_vt = "Memorize and track the chain of variable assignment hidden in the following text.";
  t.source = "built-in defaults";
  return t;
}

std::vector<std::string> eval_builtin_cwe_words() { return {std::begin(kCweWords), std::end(kCweWords)}; }

}  // namespace lcllm
