#include "examples/cluster/job.hpp"

#include <unistd.h>

#include <sstream>
#include <stdexcept>

namespace demo {

std::string where() {
  return "pid " + std::to_string(::getpid());
}
long square(long x) {
  return x * x;
}
long total(std::vector<long> values) {
  long sum = 0;
  for (long v : values) sum += v;
  return sum;
}
std::map<std::string, int> count_words(std::string text) {
  std::map<std::string, int> counts;
  std::istringstream in(text);
  for (std::string word; in >> word;) ++counts[word];
  return counts;
}
double checked_ratio(double a, double b) {
  if (b == 0) throw std::domain_error("division by zero");
  return a / b;
}

double Averager::add(double value) {
  sum_ += value;
  ++count_;
  return sum_ / static_cast<double>(count_);
}

std::string Averager::where() const {
  return demo::where();
}

}  // namespace demo

ATOLL_MODULE(cluster_demo, reg) {
  reg.function("where", &demo::where)
      .function("square", &demo::square)
      .function("total", &demo::total)
      .function("count_words", &demo::count_words)
      .function("checked_ratio", &demo::checked_ratio);
  reg.actor<demo::Averager>("Averager")
      .method("add", &demo::Averager::add)
      .method("count", &demo::Averager::count)
      .method("where", &demo::Averager::where);
}
