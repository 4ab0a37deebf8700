// Safetensors (https://github.com/huggingface/safetensors): memory-mapped reading with every
// header field validated against the file, sharded checkpoints via model.safetensors.index.json,
// and atomic writing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "moa/core/file_io.h"
#include "moa/core/half.h"

namespace moa {

// kQuant: a ggml block-quantised weight read from a GGUF file (Weight::qtype names the ggml type);
// never stored in or parsed from safetensors.
enum class DType { kF32, kF16, kBF16, kQuant };

const char* dtype_name(DType t);
size_t dtype_size(DType t);

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // not necessarily aligned
  size_t nbytes = 0;
  std::shared_ptr<const MappedFile> owner;  // keeps `data` mapped for whoever shares it
  std::string file;  // for error messages

  int64_t numel() const;
  // Converts to f32 (any supported dtype) into out[0..numel).
  void to_f32(float* out) const;
};

class SafetensorsFile {
 public:
  // Maps and validates the file: header length, JSON, dtypes, shapes, offsets inside the data
  // area and consistent with dtype x shape. Throws InputError naming file and tensor.
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::shared_ptr<const MappedFile> map_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint directory: model.safetensors, or the shards named by
// model.safetensors.index.json, or every *.safetensors file when there is no index.
class TensorStore {
 public:
  explicit TensorStore(const std::filesystem::path& dir);
  // Throws InputError "<dir>: missing tensor '<name>'" when absent.
  const TensorView& get(const std::string& name) const;
  const TensorView* find(const std::string& name) const;
  // Checks the tensor's shape, naming file, tensor, seen and expected on mismatch.
  const TensorView& get(const std::string& name, const std::vector<int64_t>& shape) const;
  std::vector<std::string> names() const;

 private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const float* data;  // f32 source, converted to dtype on write
};

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata);


}  // namespace moa
