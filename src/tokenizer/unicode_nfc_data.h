// Unicode tables for NFC (generated into unicode_nfc_data.cpp by tools/make_tokenizer_refs.py --unicode-tables).
#pragma once
#include <cstddef>
#include <cstdint>

namespace lcllm::unicode_data {

struct CccEntry { uint32_t cp; uint8_t ccc; };              // canonical combining class != 0, sorted by cp
struct DecompEntry { uint32_t cp; uint32_t first; uint32_t second; };  // canonical decomposition, second 0 = none
struct CompEntry { uint64_t pair; uint32_t composite; };     // (first << 21 | second) -> primary composite, sorted

extern const CccEntry kCcc[];
extern const std::size_t kCccCount;
extern const DecompEntry kDecomp[];
extern const std::size_t kDecompCount;
extern const CompEntry kComp[];
extern const std::size_t kCompCount;

}  // namespace lcllm::unicode_data
