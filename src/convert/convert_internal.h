// Internals of the convert module shared by its files.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "moa/convert/convert.h"
#include "moa/gguf/gguf_writer.h"
#include "moa/model/config.h"

namespace moa::conv {

// Adds the tokenizer.ggml.* keys (and tokenizer.chat_template) of the checkpoint directory:
//   tokenizer.model (SentencePiece) -> model "llama": tokens, scores, token_type;
//   tokenizer.json byte-level BPE   -> model "gpt2": tokens, token_type, merges, pre.
// Ids beyond the tokenizer's vocabulary up to c.vocab become "[PAD<id>]" tokens of type UNUSED
// (as convert_hf_to_gguf.py pads). Returns false (and warns) when the directory has neither
// file. InputError for a tokenizer it cannot express.
bool add_tokenizer_metadata(const std::filesystem::path& dir, const ModelConfig& c, GgufWriter& w,
                            const std::function<void(const std::string&)>& warn);

// Writes w to `out` atomically, reporting each tensor to progress; the result's counts (its plan
// and tokenizer flags left false).
ConvertResult write_gguf(const GgufWriter& w, const std::filesystem::path& out,
                         const std::string& type, const ConvertProgress& progress);

}  // namespace moa::conv
