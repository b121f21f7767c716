// Resource amounts in fixed point, node capacities, and label matching.
//
// Amounts are integers in units of 1/10000 so that fractional GPUs add and subtract exactly.
// Resource names are interned to small ids; a demand is a short sparse list, a node's capacity a
// dense vector indexed by id, so checking a fit costs a few integer compares.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "atoll/options.hpp"

namespace atl::runtime {

inline constexpr std::int64_t kResourceUnit = 10000;

class ResourceNames {
 public:
  ResourceNames();  // pre-interns CPU (0), GPU (1), memory (2)
  std::uint32_t intern(std::string_view name);
  const std::string& name(std::uint32_t id) const { return names_.at(id); }
  std::size_t size() const noexcept { return names_.size(); }

  static constexpr std::uint32_t cpu = 0, gpu = 1, memory = 2;

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::uint32_t> ids_;
};

// Converts a user amount; raises Error(invalid_argument) for negative, non-finite or absurdly
// large (> 1e12) values.
std::int64_t to_fixed(std::string_view name, double amount);
// Memory is counted in whole bytes; same checks, up to 2^62 bytes.
std::int64_t to_bytes(double amount);
double from_fixed(std::int64_t amount) noexcept;

// What a task or actor asks for: (resource id, amount) sorted by id, zero amounts dropped.
struct ResourceDemand {
  std::vector<std::pair<std::uint32_t, std::int64_t>> items;
  std::string describe(const ResourceNames& names) const;
};

// A node's amounts, indexed by resource id (missing ids count as zero).
struct ResourceVector {
  std::vector<std::int64_t> amounts;

  std::int64_t get(std::uint32_t id) const noexcept {
    return id < amounts.size() ? amounts[id] : 0;
  }
  bool covers(const ResourceDemand& d) const noexcept {
    for (auto [id, amount] : d.items)
      if (get(id) < amount) return false;
    return true;
  }
  void add(const ResourceDemand& d);
  void subtract(const ResourceDemand& d);  // may go negative while a borrower reclaims
};

// Builds a demand from the options' fields; raises Error(invalid_argument) when a resource is
// given twice (e.g. num_gpus and resources["GPU"]) or an amount is invalid.
ResourceDemand make_demand(ResourceNames& names, std::optional<double> num_cpus,
                           double default_cpus, double num_gpus, std::uint64_t memory,
                           const std::map<std::string, double>& custom);

using Labels = std::map<std::string, std::string>;

bool matches(const LabelSelector& s, const Labels& labels);
bool matches_all(const std::vector<LabelSelector>& selectors, const Labels& labels);
std::size_t count_matches(const std::vector<LabelSelector>& selectors, const Labels& labels);
// Raises Error(invalid_argument) for an empty key, or `in`/`not_in` without values.
void validate(const std::vector<LabelSelector>& selectors);
std::string describe(const std::vector<LabelSelector>& selectors);

}  // namespace atl::runtime
