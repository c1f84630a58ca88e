#include "krill/tensor/storage.hpp"

#include "krill/util/error.hpp"

namespace krill {

StorageImpl::~StorageImpl() {
  if (external_deleter) {
    if (*external_deleter) (*external_deleter)(data);
    delete external_deleter;
  } else if (data) {
    host_allocator::deallocate(data, nbytes);
  }
}

Ref<StorageImpl> StorageImpl::allocate(std::size_t nbytes, Device device) {
  if (!device.is_cpu())
    throw Error("cannot allocate on " + device.str() + ": this krill build has no CUDA backend (build with -DKRILL_CUDA=ON)");
  auto s = Ref<StorageImpl>::adopt(new StorageImpl);
  s->data = host_allocator::allocate(nbytes == 0 ? 1 : nbytes);
  s->nbytes = nbytes == 0 ? 1 : nbytes;
  s->device = device;
  return s;
}

Ref<StorageImpl> StorageImpl::wrap(void* data, std::size_t nbytes, Device device, std::function<void(void*)> deleter) {
  auto s = Ref<StorageImpl>::adopt(new StorageImpl);
  s->data = data;
  s->nbytes = nbytes;
  s->device = device;
  s->external_deleter = new std::function<void(void*)>(std::move(deleter));
  return s;
}

}  // namespace krill
