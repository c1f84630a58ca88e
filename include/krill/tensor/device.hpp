// Where a tensor's memory lives. Every tensor carries one; ops dispatch on it.
#pragma once
#include <cstdint>
#include <string>

namespace krill {

enum class DeviceType : std::uint8_t { CPU = 0, CUDA = 1 };
inline constexpr int kNumDeviceTypes = 2;

struct Device {
  DeviceType type = DeviceType::CPU;
  std::int8_t index = 0;

  constexpr Device() = default;
  constexpr Device(DeviceType t, int i = 0) : type(t), index(static_cast<std::int8_t>(i)) {}
  // "cpu", "cuda", "cuda:1"
  static Device parse(const std::string& s);

  constexpr bool is_cpu() const { return type == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type == DeviceType::CUDA; }
  std::string str() const;
  friend constexpr bool operator==(Device a, Device b) { return a.type == b.type && a.index == b.index; }
};

inline constexpr Device kCPU{};

}  // namespace krill
