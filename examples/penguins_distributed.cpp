// The penguin lab's Horovod cell in C++: the same network trained data-parallel on MPI with
// krill::dist, Horovod's recipe step by step (init, a shard per rank through the distributed
// sampler, rank 0's weights broadcast, lr scaled by the number of ranks, gradients averaged by
// the DistributedOptimizer, rank 0 saves).
//
//   mpirun -np 2 build/examples/penguins_distributed [data/penguins.csv] [output dir] [epochs]
//   (or: krill launch -np 2 -- build/examples/penguins_distributed ...)
// Run without mpirun it trains in one process (a world of one).
#include <krill/krill.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

using namespace krill;

struct PenguinNet : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2, fc3;
  PenguinNet() : nn::Module("PenguinNet") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(5, 10));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(10, 10));
    fc3 = register_module("fc3", std::make_shared<nn::Linear>(10, 3));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = relu(fc1->forward(x));
    h = relu(fc2->forward(h));
    return log_softmax(fc3->forward(h), 1);
  }
};

// Everything that holds distributed state (the optimizer's communication thread) ends here,
// before finalize().
void train_distributed(const std::string& csv, const std::string& out_dir, int epochs) {
  {
    const int rank = dist::rank(), size = dist::size();

    // The lab's preparation (every rank prepares the same data alike: seed 0).
    data::TabularSpec spec;
    spec.label = "Species";
    spec.categorical = {"Island"};
    spec.scale = {{"FlipperLength", 0.1}, {"BodyMass", 0.01}};
    spec.oversample = 4;
    spec.test_size = 0.3;
    spec.seed = 0;
    data::PreparedData d = data::prepare(data::read_csv(csv), spec);
    dist::check_same_across_ranks(d.train_x.size(0), "the training set size");

    // train_sampler = DistributedSampler(train_ds, num_replicas=hvd.size(), rank=hvd.rank())
    dist::DistributedSampler sampler(d.train_x.size(0), size, rank, /*shuffle=*/true, /*seed=*/0);
    data::DataLoader train_loader(data::TensorDataset(d.train_x, d.train_y), data::DataLoaderOptions(20));
    train_loader.set_sampler(
        [&sampler](std::int64_t epoch) {
          sampler.set_epoch(epoch);
          return sampler.indices();
        },
        sampler.num_samples());
    data::DataLoader test_loader(data::TensorDataset(d.val_x, d.val_y), data::DataLoaderOptions(20));

    manual_seed(0);
    auto model = std::make_shared<PenguinNet>();
    // hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    dist::broadcast_parameters(*model, 0);
    // optimizer = hvd.DistributedOptimizer(optim.Adam(lr=learning_rate * hvd.size()), ...)
    dist::DistributedOptimizer optimizer(
        std::make_unique<optim::Adam>(model->parameters(), optim::AdamOptions(0.001 * size)), *model);
    dist::broadcast_optimizer_state(optimizer, 0);
    if (rank == 0)
      std::printf("Training on %d rank(s): %lld rows per rank, batch 20 per rank, lr %g\n", size,
                  static_cast<long long>(sampler.num_samples()), 0.001 * size);

    training::EvalResult last;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      double loss = training::train_epoch(*model, optimizer, train_loader);
      Tensor t = tensor({static_cast<double>(loss)}, Shape{1}, TensorOptions(DType::Float64));
      dist::allreduce(t, dist::ReduceOp::Average);  // the mean over ranks
      last = training::evaluate(*model, test_loader);
      if (rank == 0 && (epoch % 10 == 0 || epoch == epochs))
        std::printf("Epoch: %d\nTraining set: Average loss: %.6f\nValidation set: Average loss: %.6f, Accuracy: "
                    "%lld/%lld (%.0f%%)\n\n",
                    epoch, t.item<double>(), last.loss, static_cast<long long>(last.correct),
                    static_cast<long long>(last.total), 100.0 * last.accuracy());
    }
    dist::check_parameters_in_sync(*model);

    // if hvd.rank() == 0: save the model
    if (rank == 0) {
      std::filesystem::create_directories(out_dir);
      io::save_safetensors(model->state_dict(), out_dir + "/penguin_classifier.safetensors");
      std::printf("Final: rank 0 of %d saved %s/penguin_classifier.safetensors, validation accuracy %lld/%lld\n", size,
                  out_dir.c_str(), static_cast<long long>(last.correct), static_cast<long long>(last.total));
    }
    std::fflush(stdout);
  }
}

int main(int argc, char** argv) {
  const std::string csv = argc > 1 ? argv[1] : "data/penguins.csv";
  const std::string out_dir = argc > 2 ? argv[2] : "penguins-distributed-out";
  const int epochs = argc > 3 ? std::stoi(argv[3]) : 50;
  try {
    dist::init(&argc, &argv);  // hvd.init()
    train_distributed(csv, out_dir, epochs);
    dist::finalize();
  } catch (const Error& e) {
    // After a distributed error: exit non-zero without finalize() (mpirun ends the job).
    std::fprintf(stderr, "penguins_distributed: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
