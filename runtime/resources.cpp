#include "runtime/resources.hpp"

#include <algorithm>
#include <cmath>

#include "atoll/errors.hpp"

namespace atl::runtime {

ResourceNames::ResourceNames() {
  intern("CPU");
  intern("GPU");
  intern("memory");
}

std::uint32_t ResourceNames::intern(std::string_view name) {
  if (auto it = ids_.find(std::string(name)); it != ids_.end()) return it->second;
  auto id = static_cast<std::uint32_t>(names_.size());
  names_.emplace_back(name);
  ids_.emplace(names_.back(), id);
  return id;
}

std::int64_t to_fixed(std::string_view name, double amount) {
  if (!std::isfinite(amount) || amount < 0 || amount > 1e12)
    throw Error(ErrorCategory::invalid_argument,
                "resource '" + std::string(name) + "' has an invalid amount " +
                    std::to_string(amount) + " (must be finite and >= 0)");
  return std::llround(amount * kResourceUnit);
}

std::int64_t to_bytes(double amount) {
  // At most 2^62 bytes, so node capacities add up without overflow.
  if (!std::isfinite(amount) || amount < 0 || amount > 4.6e18)
    throw Error(ErrorCategory::invalid_argument,
                "resource 'memory' has an invalid amount " + std::to_string(amount) +
                    " (must be finite, >= 0 and at most 2^62 bytes)");
  return static_cast<std::int64_t>(amount);
}

double from_fixed(std::int64_t amount) noexcept {
  return static_cast<double>(amount) / kResourceUnit;
}

std::string ResourceDemand::describe(const ResourceNames& names) const {
  std::string out = "{";
  for (auto [id, amount] : items) {
    if (out.size() > 1) out += ", ";
    out += names.name(id) + ": ";
    double v = id == ResourceNames::memory ? static_cast<double>(amount) : from_fixed(amount);
    std::string num = std::to_string(v);
    num.erase(num.find_last_not_of('0') + 1);
    if (!num.empty() && num.back() == '.') num.pop_back();
    out += num;
  }
  return out + "}";
}

void ResourceVector::add(const ResourceDemand& d) {
  for (auto [id, amount] : d.items) {
    if (id >= amounts.size()) amounts.resize(id + 1, 0);
    amounts[id] += amount;
  }
}

void ResourceVector::subtract(const ResourceDemand& d) {
  for (auto [id, amount] : d.items) {
    if (id >= amounts.size()) amounts.resize(id + 1, 0);
    amounts[id] -= amount;
  }
}

ResourceDemand make_demand(ResourceNames& names, std::optional<double> num_cpus,
                           double default_cpus, double num_gpus, std::uint64_t memory,
                           const std::map<std::string, double>& custom) {
  std::map<std::uint32_t, std::int64_t> amounts;
  auto set = [&](std::string_view name, std::int64_t amount) {
    auto [it, inserted] = amounts.emplace(names.intern(name), amount);
    if (!inserted)
      throw Error(ErrorCategory::invalid_argument,
                  "resource '" + std::string(name) + "' is given twice");
  };
  for (const auto& [name, amount] : custom) {
    if (name.empty()) throw Error(ErrorCategory::invalid_argument, "empty resource name");
    set(name, name == "memory" ? to_bytes(amount) : to_fixed(name, amount));
  }
  if (num_cpus)
    set("CPU", to_fixed("CPU", *num_cpus));
  else if (!custom.contains("CPU"))
    set("CPU", to_fixed("CPU", default_cpus));
  if (num_gpus != 0) set("GPU", to_fixed("GPU", num_gpus));
  if (memory != 0) set("memory", to_bytes(static_cast<double>(memory)));
  ResourceDemand d;
  for (auto [id, amount] : amounts)
    if (amount != 0) d.items.emplace_back(id, amount);
  return d;
}

bool matches(const LabelSelector& s, const Labels& labels) {
  auto it = labels.find(s.key);
  bool present = it != labels.end();
  auto listed = [&] {
    return present && std::find(s.values.begin(), s.values.end(), it->second) != s.values.end();
  };
  switch (s.op) {
    case LabelSelector::Op::in:
      return listed();
    case LabelSelector::Op::not_in:
      return !listed();
    case LabelSelector::Op::exists:
      return present;
    case LabelSelector::Op::does_not_exist:
      return !present;
  }
  return false;
}

bool matches_all(const std::vector<LabelSelector>& selectors, const Labels& labels) {
  return std::all_of(selectors.begin(), selectors.end(),
                     [&](const LabelSelector& s) { return matches(s, labels); });
}

std::size_t count_matches(const std::vector<LabelSelector>& selectors, const Labels& labels) {
  return static_cast<std::size_t>(
      std::count_if(selectors.begin(), selectors.end(),
                    [&](const LabelSelector& s) { return matches(s, labels); }));
}

void validate(const std::vector<LabelSelector>& selectors) {
  for (const auto& s : selectors) {
    if (s.key.empty()) throw Error(ErrorCategory::invalid_argument, "label selector without a key");
    bool needs_values = s.op == LabelSelector::Op::in || s.op == LabelSelector::Op::not_in;
    if (needs_values && s.values.empty())
      throw Error(ErrorCategory::invalid_argument,
                  "label selector on '" + s.key + "' needs at least one value");
  }
}

std::string describe(const std::vector<LabelSelector>& selectors) {
  std::string out;
  for (const auto& s : selectors) {
    if (!out.empty()) out += ", ";
    out += s.key;
    switch (s.op) {
      case LabelSelector::Op::in:
        out += " in {";
        break;
      case LabelSelector::Op::not_in:
        out += " not in {";
        break;
      case LabelSelector::Op::exists:
        out += " exists";
        continue;
      case LabelSelector::Op::does_not_exist:
        out += " does not exist";
        continue;
    }
    for (std::size_t i = 0; i < s.values.size(); ++i) out += (i ? "," : "") + s.values[i];
    out += "}";
  }
  return out;
}

}  // namespace atl::runtime
