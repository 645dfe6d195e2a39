// TidalDecode token selection on the GPU (arXiv 2410.05076 §3.1), the semantics of CpuBackend::attention_group_mass
// and attention_select_topk (src/backend/cpu/cpu_sparse_attention.cpp): for query row r and KV head h, every visible
// key j gets mass[j] = sum over the query heads g of h's GQA group of softmax_g(scores)[j]; the min(k, span) keys of
// largest mass are kept, ties to the LOWER position, and written in ascending position order.
//
// Inputs come from the decode attention kernel, which stores, for each query row r that selects, the scaled (and
// softcapped) logits in log2 units: score2[g][i] = log2(e) * s(q_g, k_{lo_r + i}) for i in [0, span_r), and the merge
// kernel's per-(row, head) log2-sum-exp lse2[r][g] = log2(sum_i exp2(score2[g][i])). So the probability of key i
// under head g is exp2(score2[g][i] - lse2[r][g]) and no max / sum pass is needed here.
//
// Two kernels: the mass kernel (one pass over the group's scores), then the top-k kernel: an exact radix select of
// the k-th largest mass on the fp32 bit patterns (mass >= 0, so unsigned bit order = value order), one thread-block
// cluster per (row, kv head) item sharing its histograms through distributed shared memory, and an ordered pass that
// writes the kept positions ascending.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

namespace lcllm {

struct SelectTopkParams {
  const float* scores;          // row r's block starts at scores + score_offset[r], laid out [n_heads][span_r]
  const int64_t* score_offset;  // [n_rows] element offset of row r's block (rows that do not select: ignored)
  const float* lse2;            // [n_rows, n_heads] log2-sum-exp2 of each (row, head)'s score2 row
  const int32_t* row_lo;        // [n_rows] position of key index 0 of the row
  const int32_t* row_span;      // [n_rows] number of visible keys span_r (may be 0)
  const int32_t* k;             // [n_rows * n_kv_heads] keys to keep for item (r, h); <= 0: item not selected, its
                                //   outputs are left untouched
  float* mass;                  // scratch, same offsets as scores; only [n_kv_heads][span_r] of each row block is
                                //   used (written only for items with 0 < k < span_r). Aliases no other buffer.
  int32_t* out_positions;       // [n_rows * n_kv_heads, stride] ascending positions of the kept keys
  int32_t* out_count;           // [n_rows * n_kv_heads] how many were kept: min(k, span_r) (caller: stride >= that)
  int32_t n_rows, n_heads, n_kv_heads, stride;
};

// Query head g belongs to KV head g / (n_heads / n_kv_heads). Works for any span in [0, 2^31), any GQA group and any
// k >= 1 (k >= span keeps every visible key without computing masses). Asynchronous on `stream`.
void launch_attention_select_topk(const SelectTopkParams& p, cudaStream_t stream);

}  // namespace lcllm
