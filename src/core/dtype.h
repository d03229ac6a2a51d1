// Element types of tensors, with their sizes and names (the names are safetensors' dtype strings).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace duo {

enum class DType : uint8_t { F32, F64, BF16, F16, I32, I64, U16, U32, U8 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: case DType::U32: return 4;
    case DType::BF16: case DType::F16: case DType::U16: return 2;
    case DType::U8: return 1;
  }
  return 0;
}

// safetensors spelling
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U16: return "U16";
    case DType::U32: return "U32";
    case DType::U8: return "U8";
  }
  return "?";
}

// Returns false when the name is unknown.
inline bool dtype_from_name(const std::string& s, DType* out) {
  static const DType all[] = {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I32,
                              DType::I64, DType::U16, DType::U32,  DType::U8};
  for (DType t : all)
    if (s == dtype_name(t)) { *out = t; return true; }
  return false;
}

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<double>() { return DType::F64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::I32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::U16; }
template <> constexpr DType dtype_of<uint32_t>() { return DType::U32; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::U8; }

enum class Device : uint8_t { CPU, CUDA };
inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

}  // namespace duo
