// A block of memory on a device, shared by a tensor and all its views.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "krill/tensor/allocator.hpp"
#include "krill/tensor/device.hpp"
#include "krill/util/ref.hpp"

namespace krill {

struct StorageImpl : RefCounted, CachedObject {
  void* data = nullptr;
  std::size_t nbytes = 0;
  Device device;
  // Bumped by every in-place write; autograd checks it for tensors saved for backward.
  std::uint32_t version = 0;
  // Non-null for memory krill does not own (from_blob): called instead of freeing.
  std::function<void(void*)>* external_deleter = nullptr;

  StorageImpl() = default;
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;
  ~StorageImpl();

  // Allocates `nbytes` on `device` through the device's caching allocator.
  static Ref<StorageImpl> allocate(std::size_t nbytes, Device device);
  // Wraps memory owned by the caller; `deleter` (may be empty) runs when the last tensor goes.
  static Ref<StorageImpl> wrap(void* data, std::size_t nbytes, Device device, std::function<void(void*)> deleter);
};

}  // namespace krill
