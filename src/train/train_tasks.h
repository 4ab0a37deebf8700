// Internal: the "retrieval:" training data source (see train_data.h for the spec grammar).
#pragma once

#include <memory>
#include <string>

#include "moa/tokenizer/tokenizer.h"
#include "moa/train/train_data.h"

namespace moa {

// spec without the "retrieval:" prefix: comma-separated key=value.
std::unique_ptr<TrainData> make_retrieval_data(const std::string& spec, const Tokenizer& tok);

}  // namespace moa
