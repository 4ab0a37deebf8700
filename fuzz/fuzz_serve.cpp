// libFuzzer harness for what `moa serve` reads from a client: the request bodies of
// /v1/completions, /v1/chat/completions, /tokenize and /detokenize (api.h; the first input byte
// picks the parser), and the text streaming every answer goes through (TextStream).
//
// The parsers may only throw serve::ApiError (they answer 4xx). TextStream must release the same
// text whether the pieces come one by one or all at once: the rest of the input is split into
// pieces at 0xFF bytes, its first piece being a stop string.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "moa/serve/api.h"
#include "moa/serve/text_stream.h"

namespace {

std::string stream(const std::vector<std::string>& pieces, const std::vector<std::string>& stop) {
  moa::serve::TextStream ts(stop);
  std::string out;
  for (const auto& p : pieces) out += ts.push(p);
  return out + ts.finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 4) {
      case 0: (void)moa::serve::parse_completion_request(body, false); break;
      case 1: (void)moa::serve::parse_completion_request(body, true); break;
      case 2: (void)moa::serve::parse_tokenize_request(body); break;
      default: (void)moa::serve::parse_detokenize_request(body); break;
    }
  } catch (const moa::serve::ApiError&) {
  }
  std::vector<std::string> pieces(1);
  for (char c : body) {
    if (static_cast<unsigned char>(c) == 0xFF) {
      pieces.emplace_back();
    } else {
      pieces.back() += c;
    }
  }
  const std::vector<std::string> stop = {pieces[0]};
  pieces.erase(pieces.begin());
  std::string all;
  for (const auto& p : pieces) all += p;
  if (stream(pieces, stop) != stream({all}, stop)) std::abort();
  return 0;
}
