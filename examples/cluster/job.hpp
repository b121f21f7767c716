// The cluster demo's task module: built into the driver (to submit by function) and as a shared
// library that the nodes' worker processes load.
#pragma once

#include <atoll/atoll.hpp>

#include <map>
#include <string>

namespace demo {

// Where a task ran: "pid <worker pid>".
std::string where();
long square(long x);
long total(std::vector<long> values);
std::map<std::string, int> count_words(std::string text);
double checked_ratio(double a, double b);  // throws std::domain_error when b == 0

// A running average kept in an actor: its state lives in one worker process on one node.
class Averager {
 public:
  double add(double value);  // the average so far
  long count() const { return count_; }
  std::string where() const;

 private:
  double sum_ = 0;
  long count_ = 0;
};

}  // namespace demo

void cluster_demo(atl::Registry& reg);
