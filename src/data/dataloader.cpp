#include "krill/data/dataloader.hpp"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "krill/tensor/ops.hpp"

namespace krill::data {

// ---- Dataset ----

std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t index) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

Batch Dataset::allocate_batch(std::int64_t n) const {
  Batch b;
  Shape in = input_shape();
  in.insert(0, n);
  b.input = empty(in, input_dtype());
  if (has_targets()) {
    Shape tg = target_shape();
    tg.insert(0, n);
    b.target = empty(tg, target_dtype());
  }
  return b;
}

Batch Dataset::get_batch(const std::int64_t* indices, std::int64_t n, std::uint64_t seed) const {
  Batch b = allocate_batch(n);
  fill_batch(indices, n, seed, b.input.raw_data(), b.target.defined() ? b.target.raw_data() : nullptr);
  return b;
}

// ---- TensorDataset ----

TensorDataset::TensorDataset(Tensor inputs, Tensor targets) : inputs_(std::move(inputs)), targets_(std::move(targets)) {
  if (!inputs_.defined() || inputs_.ndim() == 0)
    throw ValueError("TensorDataset: inputs must have a leading sample dimension");
  if (targets_.defined() && (targets_.ndim() == 0 || targets_.shape()[0] != inputs_.shape()[0]))
    throw ShapeError("TensorDataset: " + std::to_string(inputs_.shape()[0]) + " inputs but targets of shape " +
                     targets_.shape().str());
  inputs_ = inputs_.contiguous();
  if (targets_.defined()) targets_ = targets_.contiguous();
}

Shape TensorDataset::input_shape() const {
  Shape s = inputs_.shape();
  s.erase(0);
  return s;
}

Shape TensorDataset::target_shape() const {
  if (!targets_.defined()) return Shape{};
  Shape s = targets_.shape();
  s.erase(0);
  return s;
}

void TensorDataset::fill_batch(const std::int64_t* indices, std::int64_t n, std::uint64_t, void* input,
                               void* target) const {
  const std::int64_t rows = size();
  const auto gather = [&](const Tensor& src, void* dst) {
    const std::size_t row = src.nbytes() / static_cast<std::size_t>(rows);
    const char* from = static_cast<const char*>(src.raw_data());
    char* to = static_cast<char*>(dst);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t r = indices[i];
      if (r < 0 || r >= rows)
        throw IndexError("TensorDataset: row index " + std::to_string(r) + " is out of range for " +
                         std::to_string(rows) + " rows");
      std::memcpy(to + static_cast<std::size_t>(i) * row, from + static_cast<std::size_t>(r) * row, row);
    }
  };
  gather(inputs_, input);
  if (targets_.defined() && target) gather(targets_, target);
}

// ---- worker pool ----

struct DataLoader::Pool {
  enum class State { Free, Queued, Running, Done };
  struct Slot {
    // Written by the consumer before queuing, read by the worker that takes the slot.
    const std::int64_t* indices = nullptr;
    std::int64_t n = 0;
    std::uint64_t seed = 0;
    void* input = nullptr;
    void* target = nullptr;
    Batch batch;  // the tensors being filled: touched by the consumer's thread only
    State state = State::Free;
    std::exception_ptr error;
  };

  std::shared_ptr<const Dataset> dataset;
  std::vector<Slot> slots;
  std::deque<Slot*> queue;
  std::mutex m;
  std::condition_variable work_cv, done_cv;
  bool stop = false;
  std::vector<std::thread> threads;

  Pool(std::shared_ptr<const Dataset> ds, int workers, int prefetch)
      : dataset(std::move(ds)), slots(static_cast<std::size_t>(prefetch)) {
    threads.reserve(static_cast<std::size_t>(workers));
    try {
      for (int i = 0; i < workers; ++i) threads.emplace_back([this] { run(); });
    } catch (...) {
      shutdown();
      throw;
    }
  }
  ~Pool() { shutdown(); }

  void shutdown() noexcept {
    {
      std::lock_guard<std::mutex> lock(m);
      stop = true;
      queue.clear();
    }
    work_cv.notify_all();
    for (auto& t : threads)
      if (t.joinable()) t.join();
    threads.clear();
  }

  void run() {
    for (;;) {
      Slot* s;
      {
        std::unique_lock<std::mutex> lock(m);
        work_cv.wait(lock, [&] { return stop || !queue.empty(); });
        if (stop) return;
        s = queue.front();
        queue.pop_front();
        s->state = State::Running;
      }
      std::exception_ptr error;
      try {
        dataset->fill_batch(s->indices, s->n, s->seed, s->input, s->target);
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(m);
        s->error = std::move(error);
        s->state = State::Done;
      }
      done_cv.notify_all();
    }
  }

  void enqueue(Slot& s) {
    {
      std::lock_guard<std::mutex> lock(m);
      s.state = State::Queued;
      queue.push_back(&s);
    }
    work_cv.notify_one();
  }

  // Waits for a queued or running slot; false when the slot was never queued.
  bool wait_done(Slot& s) {
    std::unique_lock<std::mutex> lock(m);
    if (s.state == State::Free) return false;
    done_cv.wait(lock, [&] { return s.state == State::Done; });
    return true;
  }

  // Drops queued batches and waits for the running ones; every slot is free afterwards.
  void cancel() {
    std::unique_lock<std::mutex> lock(m);
    queue.clear();
    done_cv.wait(lock, [&] {
      for (const Slot& s : slots)
        if (s.state == State::Running) return false;
      return true;
    });
    for (Slot& s : slots) {
      s.state = State::Free;
      s.error = nullptr;
      s.batch = Batch{};
    }
  }
};

// ---- DataLoader ----

DataLoader::DataLoader(TensorDataset dataset, DataLoaderOptions options, Generator* gen)
    : DataLoader(std::make_shared<const TensorDataset>(std::move(dataset)), options, gen) {}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options, Generator* gen)
    : dataset_(std::move(dataset)), options_(options), gen_(gen ? gen : &default_generator()) {
  if (!dataset_) throw ValueError("DataLoader: the dataset is null");
  if (options_.batch_size_ <= 0)
    throw ValueError("DataLoader: batch_size must be a positive integer, got " + std::to_string(options_.batch_size_));
  if (options_.num_workers_ < 0)
    throw ValueError("DataLoader: num_workers must be >= 0 (0: load in the calling thread), got " +
                     std::to_string(options_.num_workers_));
  if (options_.prefetch_ < 1)
    throw ValueError("DataLoader: prefetch must be >= 1 batch, got " + std::to_string(options_.prefetch_));
  tensor_dataset_ = dynamic_cast<const TensorDataset*>(dataset_.get());
  if (options_.num_workers_ > 0) pool_ = std::make_unique<Pool>(dataset_, options_.num_workers_, options_.prefetch_);
}

DataLoader::~DataLoader() = default;
DataLoader::DataLoader(DataLoader&&) noexcept = default;
DataLoader& DataLoader::operator=(DataLoader&&) noexcept = default;

void DataLoader::set_sampler(Sampler sampler, std::int64_t num_samples) {
  if (!sampler) throw ValueError("DataLoader::set_sampler: the sampler is empty");
  if (num_samples < 0) throw ValueError("DataLoader::set_sampler: num_samples must be >= 0, got " + std::to_string(num_samples));
  if (pool_) pool_->cancel();
  sampler_ = std::move(sampler);
  sampler_samples_ = num_samples;
  next_batch_ = num_batches();  // the current epoch (if any) is over
}

std::int64_t DataLoader::num_batches() const {
  const std::int64_t n = epoch_size(), b = options_.batch_size_;
  return options_.drop_last_ ? n / b : (n + b - 1) / b;
}

std::uint64_t DataLoader::batch_seed(std::int64_t b) const { return mix_seed(epoch_seed_, static_cast<std::uint64_t>(b)); }

void DataLoader::begin_epoch() {
  if (pool_) pool_->cancel();
  cursor_ = 0;
  next_batch_ = 0;
  submitted_ = 0;
  epoch_failed_ = false;
  // _BaseDataLoaderIter: base seed = torch.empty((), int64).random_()
  epoch_seed_ = gen_->random64();
  if (sampler_) {
    order_ = sampler_(epoch_++).contiguous();
    if (order_.dtype() != DType::Int64 || order_.ndim() != 1 || order_.numel() != sampler_samples_) {
      epoch_failed_ = true;
      throw ValueError("DataLoader: the sampler must return int64 [" + std::to_string(sampler_samples_) +
                       "] row indices, got " + order_.shape().str());
    }
  } else if (options_.shuffle_) {
    // RandomSampler: seed = int(torch.empty((), int64).random_()); randperm(n, Generator(seed))
    const std::uint64_t seed = gen_->random64() % (std::uint64_t{1} << 63);
    sampler_gen_.manual_seed(seed);
    order_ = randperm(dataset_->size(), &sampler_gen_);
  } else {
    order_ = Tensor();
    const std::int64_t n = dataset_->size();
    if (static_cast<std::int64_t>(identity_.size()) != n && (pool_ || !tensor_dataset_)) {
      identity_.resize(static_cast<std::size_t>(n));
      std::iota(identity_.begin(), identity_.end(), std::int64_t{0});
    }
  }
  if (pool_) {
    const std::int64_t ahead = std::min<std::int64_t>(options_.prefetch_, num_batches());
    try {
      for (std::int64_t b = 0; b < ahead; ++b) submit(b);
    } catch (...) {  // e.g. the dataset cannot say its input shape
      pool_->cancel();
      epoch_failed_ = true;
      throw;
    }
  }
}

const std::int64_t* DataLoader::batch_indices(std::int64_t b, std::int64_t* len) const {
  const std::int64_t n = epoch_size(), bs = options_.batch_size_;
  const std::int64_t start = b * bs;
  *len = std::min(bs, n - start);
  const std::int64_t* base = order_.defined() ? order_.data_ptr<std::int64_t>() : identity_.data();
  return base + start;
}

void DataLoader::submit(std::int64_t b) {
  Pool::Slot& s = pool_->slots[static_cast<std::size_t>(b % options_.prefetch_)];
  std::int64_t len;
  s.indices = batch_indices(b, &len);
  s.n = len;
  s.seed = batch_seed(b);
  s.batch = dataset_->allocate_batch(len);  // on the consumer's thread: its allocator cache
  s.input = s.batch.input.raw_data();
  s.target = s.batch.target.defined() ? s.batch.target.raw_data() : nullptr;
  s.error = nullptr;
  pool_->enqueue(s);
  submitted_ = b + 1;
}

void DataLoader::fill_now(std::int64_t b, Batch& batch) {
  const std::int64_t bs = options_.batch_size_, start = b * bs;
  const std::int64_t len = std::min(bs, epoch_size() - start);
  if (tensor_dataset_) {
    const TensorDataset& ds = *tensor_dataset_;
    if (order_.defined()) {
      Tensor idx = order_.narrow(0, start, len);
      batch.input = index_select(ds.inputs(), 0, idx);
      batch.target = ds.targets().defined() ? index_select(ds.targets(), 0, idx) : Tensor();
    } else {
      // views of consecutive rows: no copy
      batch.input = ds.inputs().narrow(0, start, len);
      batch.target = ds.targets().defined() ? ds.targets().narrow(0, start, len) : Tensor();
    }
    return;
  }
  std::int64_t n;
  const std::int64_t* idx = batch_indices(b, &n);
  batch = dataset_->get_batch(idx, n, batch_seed(b));
}

bool DataLoader::next(Batch& batch) {
  const std::int64_t nb = num_batches();
  if (epoch_failed_ || next_batch_ >= nb) {
    batch = Batch{};
    return false;
  }
  const std::int64_t b = next_batch_;
  if (!pool_) {
    try {
      fill_now(b, batch);
    } catch (...) {
      epoch_failed_ = true;
      batch = Batch{};
      throw;
    }
  } else {
    Pool::Slot& s = pool_->slots[static_cast<std::size_t>(b % options_.prefetch_)];
    if (!pool_->wait_done(s)) {  // not queued (a submission failed earlier): queue it now
      submit(b);
      pool_->wait_done(s);
    }
    if (s.error) {
      std::exception_ptr error = s.error;
      pool_->cancel();
      epoch_failed_ = true;
      batch = Batch{};
      std::rethrow_exception(error);
    }
    batch = std::move(s.batch);
    s.batch = Batch{};
    s.state = Pool::State::Free;
    if (submitted_ < nb) submit(submitted_);
  }
  ++next_batch_;
  cursor_ += batch.size();
  return true;
}

}  // namespace krill::data
