#include "moa/model/safetensors.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "moa/core/error.h"

namespace moa {

using nlohmann::json;

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kQuant: return "QUANT";
  }
  return "?";
}

size_t dtype_size(DType t) {
  MOA_CHECK(t != DType::kQuant, "a block-quantised type has no per-value size");
  return t == DType::kF32 ? 4 : 2;
}


int64_t TensorView::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

void TensorView::to_f32(float* out) const {
  const int64_t n = numel();
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out, data, size_t(n) * 4);
      break;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, data + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      break;
    case DType::kF16: {
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 2 * i));
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
      }
      for (; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, data + 2 * i, 2);
        out[i] = f16_to_f32(h);
      }
      break;
    }
    case DType::kQuant:
      MOA_CHECK(false, "{}: safetensors never holds block-quantised data", name);
  }
}

namespace {

bool parse_dtype(const std::string& s, DType* out) {
  if (s == "F32") *out = DType::kF32;
  else if (s == "F16") *out = DType::kF16;
  else if (s == "BF16") *out = DType::kBF16;
  else return false;
  return true;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) {
  map_ = std::make_shared<const MappedFile>(path);
  const std::string file = path.string();
  const size_t size = map_->size();
  if (size < 8) input_error("{}: truncated: {} bytes, a safetensors file has at least 8", file, size);
  uint64_t header_len;
  std::memcpy(&header_len, map_->data(), 8);
  if (header_len > size - 8) {
    input_error("{}: header length {} exceeds the file's remaining {} bytes (truncated or not "
                "safetensors)",
                file, header_len, size - 8);
  }
  const char* hp = reinterpret_cast<const char*>(map_->data() + 8);
  json header;
  try {
    header = json::parse(hp, hp + header_len);
  } catch (const json::exception& e) {
    input_error("{}: header is not valid JSON ({})", file, e.what());
  }
  if (!header.is_object()) input_error("{}: header is not a JSON object", file);
  const uint8_t* base = map_->data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (v.is_object()) {
        for (auto& [k, m] : v.items()) {
          if (m.is_string()) metadata_[k] = m.get<std::string>();
        }
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets")) {
      input_error("{}: tensor '{}': expected an object with dtype, shape and data_offsets", file,
                  name);
    }
    TensorView t;
    t.name = name;
    t.file = file;
    if (!v["dtype"].is_string() || !parse_dtype(v["dtype"].get<std::string>(), &t.dtype)) {
      input_error("{}: tensor '{}': dtype {} is not supported (expected F32, F16 or BF16)", file,
                  name, v["dtype"].dump());
    }
    const json& sh = v["shape"];
    if (!sh.is_array()) input_error("{}: tensor '{}': shape is not a list", file, name);
    uint64_t numel = 1;
    for (auto& d : sh) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        input_error("{}: tensor '{}': shape {} has a non-integer or negative entry", file, name,
                    sh.dump());
      }
      t.shape.push_back(d.get<int64_t>());
      if (t.shape.back() != 0 && numel > (uint64_t(1) << 40) / uint64_t(t.shape.back())) {
        input_error("{}: tensor '{}': shape {} is implausibly large", file, name, sh.dump());
      }
      numel *= uint64_t(t.shape.back());
    }
    const json& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned()) {
      input_error("{}: tensor '{}': data_offsets {} is not [begin, end]", file, name, off.dump());
    }
    uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
    if (b > e || e > data_size) {
      input_error("{}: tensor '{}': data_offsets [{}, {}] outside the data area of {} bytes "
                  "(truncated file?)",
                  file, name, b, e, data_size);
    }
    if (e - b != numel * dtype_size(t.dtype)) {
      input_error("{}: tensor '{}': data_offsets span {} bytes, but {} {} needs {}", file, name,
                  e - b, sh.dump(), dtype_name(t.dtype), numel * dtype_size(t.dtype));
    }
    t.data = base + b;
    t.owner = map_;
    t.nbytes = e - b;
    ranges.emplace_back(b, e);
    tensors_[name] = std::move(t);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      input_error("{}: tensors overlap in the data area (offset {})", file, ranges[i].first);
    }
  }
}

TensorStore::TensorStore(const std::filesystem::path& dir) : dir_(dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) input_error("{}: not a directory (expected a checkpoint directory)", dir.string());
  std::vector<fs::path> files;
  auto index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    json j;
    try {
      j = json::parse(read_text(index));
    } catch (const json::exception& e) {
      input_error("{}: invalid JSON ({})", index.string(), e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
      input_error("{}: missing field 'weight_map' (expected {{tensor: file}})", index.string());
    }
    std::vector<std::string> names;
    for (auto& [k, v] : j["weight_map"].items()) {
      if (!v.is_string()) input_error("{}: weight_map['{}'] is not a file name", index.string(), k);
      names.push_back(v.get<std::string>());
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (auto& n : names) {
      if (n.find('/') != std::string::npos) input_error("{}: shard '{}' is not a plain file name", index.string(), n);
      if (!fs::exists(dir / n)) input_error("{}: shard '{}' is missing", index.string(), n);
      files.push_back(dir / n);
    }
  } else if (fs::exists(dir / "model.safetensors")) {
    files.push_back(dir / "model.safetensors");
  } else {
    for (auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() == ".safetensors") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
  }
  if (files.empty()) input_error("{}: no *.safetensors files (expected model.safetensors)", dir.string());
  for (auto& f : files) {
    files_.push_back(std::make_unique<SafetensorsFile>(f));
    for (auto& [name, t] : files_.back()->tensors()) {
      if (index_.count(name)) input_error("{}: tensor '{}' appears in two files", f.string(), name);
      index_[name] = &t;
    }
  }
}

const TensorView* TensorStore::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorView& TensorStore::get(const std::string& name) const {
  const TensorView* t = find(name);
  if (!t) input_error("{}: missing tensor '{}'", dir_.string(), name);
  return *t;
}

static std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

const TensorView& TensorStore::get(const std::string& name, const std::vector<int64_t>& shape) const {
  const TensorView& t = get(name);
  if (t.shape != shape) {
    input_error("{}: tensor '{}' has shape {}, expected {} (config.json and weights disagree)",
                t.file, name, shape_str(t.shape), shape_str(shape));
  }
  return t;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> r;
  for (auto& [k, v] : index_) r.push_back(k);
  return r;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (auto& t : tensors) {
    uint64_t n = 1;
    for (auto d : t.shape) n *= uint64_t(d);
    uint64_t bytes = n * dtype_size(t.dtype);
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string hs = header.dump();
  while ((hs.size() + 8) % 8 != 0) hs.push_back(' ');  // data starts 8-byte aligned
  write_file_atomic(path, [&](std::FILE* f) {
    uint64_t len = hs.size();
    std::fwrite(&len, 8, 1, f);
    std::fwrite(hs.data(), 1, hs.size(), f);
    std::vector<uint16_t> buf;
    for (auto& t : tensors) {
      int64_t n = 1;
      for (auto d : t.shape) n *= d;
      if (t.dtype == DType::kF32) {
        std::fwrite(t.data, 4, size_t(n), f);
        continue;
      }
      buf.resize(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        buf[i] = t.dtype == DType::kBF16 ? f32_to_bf16(t.data[i]) : f32_to_f16(t.data[i]);
      }
      std::fwrite(buf.data(), 2, size_t(n), f);
    }
    if (std::ferror(f)) input_error("{}: write failed", path.string());
  });
}

}  // namespace moa
