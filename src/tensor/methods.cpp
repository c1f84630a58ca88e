// Tensor method spellings and operators: thin forwards to the op functions.
#include "internal.hpp"

namespace krill {

Tensor Tensor::add(const Tensor& o, double alpha) const { return krill::add(*this, o, alpha); }
Tensor Tensor::sub(const Tensor& o, double alpha) const { return krill::sub(*this, o, alpha); }
Tensor Tensor::mul(const Tensor& o) const { return krill::mul(*this, o); }
Tensor Tensor::div(const Tensor& o) const { return krill::div(*this, o); }
Tensor Tensor::matmul(const Tensor& o) const { return krill::matmul(*this, o); }
Tensor Tensor::relu() const { return krill::relu(*this); }
Tensor Tensor::sigmoid() const { return krill::sigmoid(*this); }
Tensor Tensor::tanh() const { return krill::tanh(*this); }
Tensor Tensor::exp() const { return krill::exp(*this); }
Tensor Tensor::log() const { return krill::log(*this); }
Tensor Tensor::sqrt() const { return krill::sqrt(*this); }
Tensor Tensor::abs() const { return krill::abs(*this); }
Tensor Tensor::neg() const { return krill::neg(*this); }
Tensor Tensor::pow(double e) const { return krill::pow(*this, e); }
Tensor Tensor::pow(const Tensor& e) const { return krill::pow(*this, e); }
Tensor Tensor::sum() const { return krill::sum(*this); }
Tensor Tensor::sum(std::int64_t dim, bool keepdim) const { return krill::sum(*this, {dim}, keepdim); }
Tensor Tensor::sum(const std::vector<std::int64_t>& dims, bool keepdim) const {
  return krill::sum(*this, dims, keepdim);
}
Tensor Tensor::mean() const { return krill::mean(*this); }
Tensor Tensor::mean(std::int64_t dim, bool keepdim) const { return krill::mean(*this, {dim}, keepdim); }
Tensor Tensor::mean(const std::vector<std::int64_t>& dims, bool keepdim) const {
  return krill::mean(*this, dims, keepdim);
}
Tensor Tensor::max() const { return krill::max(*this); }
std::pair<Tensor, Tensor> Tensor::max(std::int64_t dim, bool keepdim) const { return krill::max(*this, dim, keepdim); }
Tensor Tensor::min() const { return krill::min(*this); }
std::pair<Tensor, Tensor> Tensor::min(std::int64_t dim, bool keepdim) const { return krill::min(*this, dim, keepdim); }
Tensor Tensor::argmax() const { return krill::argmax(*this); }
Tensor Tensor::argmax(std::int64_t dim, bool keepdim) const { return krill::argmax(*this, dim, keepdim); }
Tensor Tensor::softmax(std::int64_t dim) const { return krill::softmax(*this, dim); }
Tensor Tensor::log_softmax(std::int64_t dim) const { return krill::log_softmax(*this, dim); }
Tensor Tensor::index_select(std::int64_t dim, const Tensor& index) const {
  return krill::index_select(*this, dim, index);
}
Tensor Tensor::gather(std::int64_t dim, const Tensor& index) const { return krill::gather(*this, dim, index); }
Tensor Tensor::eq(const Tensor& o) const { return krill::eq(*this, o); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double s) { return add(a, s); }
Tensor operator-(const Tensor& a, double s) { return sub(a, s); }
Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
Tensor operator/(const Tensor& a, double s) { return div(a, s); }
Tensor operator+(double s, const Tensor& a) { return add(a, s); }
Tensor operator-(double s, const Tensor& a) { return rsub(a, s); }
Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
Tensor operator/(double s, const Tensor& a) { return rdiv(a, s); }

}  // namespace krill
