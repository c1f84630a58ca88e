// The penguin lab, cell by cell, in C++ with krill: the notebook's PyTorch code line for line.
#include <filesystem>
//
//   build/examples/penguins [data/penguins.csv] [output directory, default: penguins-out]
#include <krill/krill.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

using namespace krill;

// ---- Cell: the neural network -------------------------------------------------------------
const int hl = 10;  // hidden layer size

struct PenguinNet : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2, fc3;
  PenguinNet() : nn::Module("PenguinNet") {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(5, hl));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(hl, hl));
    fc3 = register_module("fc3", std::make_shared<nn::Linear>(hl, 3));
  }
  Tensor forward(const Tensor& x) override {
    Tensor h = relu(fc1->forward(x));
    h = relu(fc2->forward(h));
    return log_softmax(fc3->forward(h), 1);
  }
};

// ---- Cell: training and validation functions ----------------------------------------------
// loss_criteria = nn.CrossEntropyLoss(), applied to the network's log_softmax output as in the lab
Tensor loss_criteria(const Tensor& out, const Tensor& target) { return cross_entropy(out, target); }

double train(PenguinNet& model, data::DataLoader& data_loader, optim::Optimizer& optimizer) {
  model.train();
  double train_loss = 0;
  int batches = 0;
  for (auto& batch : data_loader) {
    optimizer.zero_grad();
    Tensor out = model.forward(batch.input);
    Tensor loss = loss_criteria(out, batch.target);
    train_loss += loss.item<float>();
    loss.backward();
    optimizer.step();
    ++batches;
  }
  double avg_loss = train_loss / batches;
  std::printf("Training set: Average loss: %.6f\n", avg_loss);
  return avg_loss;
}

double test(PenguinNet& model, data::DataLoader& data_loader) {
  model.eval();
  double test_loss = 0;
  std::int64_t correct = 0;
  int batch_count = 0;
  NoGradGuard no_grad;
  for (auto& batch : data_loader) {
    ++batch_count;
    Tensor out = model.forward(batch.input);
    test_loss += loss_criteria(out, batch.target).item<float>();
    Tensor predicted = std::get<1>(max(out, 1));
    correct += sum(eq(batch.target, predicted)).item<std::int64_t>();
  }
  const double avg_loss = test_loss / batch_count;
  const auto n = data_loader.dataset().size();
  std::printf("Validation set: Average loss: %.6f, Accuracy: %lld/%lld (%.0f%%)\n\n", avg_loss,
              static_cast<long long>(correct), static_cast<long long>(n), 100.0 * correct / n);
  return avg_loss;
}

int main(int argc, char** argv) {
  const std::string csv = argc > 1 ? argv[1] : "data/penguins.csv";
  const std::string out_dir = argc > 2 ? argv[2] : "penguins-out";
  std::filesystem::create_directories(out_dir);

  // ---- Cell: load and prepare the data ----------------------------------------------------
  // drop incomplete rows, Island -> index, FlipperLength/10, BodyMass/100, oversample x4,
  // split 70/30 with seed 0
  data::CsvTable table = data::read_csv(csv);
  data::TabularSpec spec;
  spec.label = "Species";
  spec.categorical = {"Island"};
  spec.scale = {{"FlipperLength", 0.1}, {"BodyMass", 0.01}};
  spec.dropna = true;
  spec.oversample = 4;
  spec.test_size = 0.3;
  spec.seed = 0;
  data::PreparedData d = data::prepare(table, spec);
  std::cout << "Training Set: " << d.train_x.size(0) << ", Test Set: " << d.val_x.size(0) << "\n";

  // ---- Cell: data loaders (batches of 20) --------------------------------------------------
  data::DataLoader train_loader(data::TensorDataset(d.train_x, d.train_y), data::DataLoaderOptions(20));
  data::DataLoader test_loader(data::TensorDataset(d.val_x, d.val_y), data::DataLoaderOptions(20));

  // ---- Cell: create the model -------------------------------------------------------------
  manual_seed(0);
  auto model = std::make_shared<PenguinNet>();
  std::cout << *model << "\n";

  // ---- Cell: train for 100 epochs ---------------------------------------------------------
  optim::Adam optimizer(model->parameters(), optim::AdamOptions(0.001));
  optimizer.zero_grad();
  std::vector<double> epoch_nums, training_loss, validation_loss;
  const int epochs = 100;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    std::printf("Epoch: %d\n", epoch);
    double train_loss = train(*model, train_loader, optimizer);
    double test_loss = test(*model, test_loader);
    epoch_nums.push_back(epoch);
    training_loss.push_back(train_loss);
    validation_loss.push_back(test_loss);
  }

  // ---- Cell: plot the loss history --------------------------------------------------------
  io::write_line_plot(out_dir + "/loss.png",
                      {{"training", epoch_nums, training_loss}, {"validation", epoch_nums, validation_loss}},
                      {"", "epoch", "loss"});

  // ---- Cell: view the learned weights -----------------------------------------------------
  for (const auto& [name, tensor] : model->state_dict()) std::cout << name << "\n" << tensor << "\n";

  // ---- Cell: save the model weights, delete the model, load it again ------------------------
  const std::string model_file = out_dir + "/penguin_classifier.safetensors";
  io::save_safetensors(model->state_dict(), model_file);
  model.reset();
  model = std::make_shared<PenguinNet>();
  model->load_state_dict(io::load_safetensors(model_file));

  // ---- Cell: predict the species of a new penguin -------------------------------------------
  // Island Dream (1), CulmenLength 50.4, CulmenDepth 15.3, FlipperLength 200/10, BodyMass 5000/100
  model->eval();
  Tensor x = tensor({1.f, 50.4f, 15.3f, 20.f, 50.f}, {1, 5});
  NoGradGuard no_grad;
  Tensor predicted = std::get<1>(max(model->forward(x), 1));
  std::cout << "Prediction: " << predicted.item<std::int64_t>() << "\n";
  return 0;
}
