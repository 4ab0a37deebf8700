#include "moa/serve/text_stream.h"

#include <algorithm>

namespace moa::serve {

size_t complete_utf8_prefix(const std::string& s) {
  // Look back at most 3 bytes for the lead byte of a sequence that has not ended yet.
  const size_t n = s.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for its lead
    size_t need = 1;
    if ((c & 0xE0) == 0xC0) need = 2;
    else if ((c & 0xF0) == 0xE0) need = 3;
    else if ((c & 0xF8) == 0xF0) need = 4;
    return back < need ? n - back : n;
  }
  return n;
}

namespace {

std::string replace_invalid_tail(std::string s) {
  const size_t ok = complete_utf8_prefix(s);
  if (ok < s.size()) {
    s.resize(ok);
    s += "\xEF\xBF\xBD";
  }
  return s;
}

}  // namespace

std::string TextStream::push(const std::string& bytes) {
  if (stopped_) return {};
  pending_ += bytes;
  // A stop string inside what we have: release what precedes the earliest one, then stop.
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) {
    if (s.empty()) continue;
    const size_t at = pending_.find(s);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = replace_invalid_tail(pending_.substr(0, cut));
    pending_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stop_) {
    for (size_t len = std::min(s.size() - (s.empty() ? 0 : 1), pending_.size()); len > hold; --len) {
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  size_t release = complete_utf8_prefix(pending_.substr(0, pending_.size() - hold));
  std::string out = pending_.substr(0, release);
  pending_.erase(0, release);
  return out;
}

std::string TextStream::finish() {
  if (stopped_) return {};
  std::string out = replace_invalid_tail(pending_);
  pending_.clear();
  return out;
}

}  // namespace moa::serve
