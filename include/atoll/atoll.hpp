// atoll/atoll.hpp — the whole public C++ API.
//
// Example:
//   #include <atoll/atoll.hpp>
//   int add(int a, int b) { return a + b; }
//   ATOLL_MODULE(demo, reg) { reg.function("add", &add); }
//   int main() {
//     auto rt = atl::init({.modules = {demo}});
//     return rt.task(add).remote(1, 2).get() == 3 ? 0 : 1;
//   }
#pragma once

#include "atoll/actor.hpp"
#include "atoll/buffer.hpp"
#include "atoll/errors.hpp"
#include "atoll/ids.hpp"
#include "atoll/object_ref.hpp"
#include "atoll/options.hpp"
#include "atoll/registry.hpp"
#include "atoll/runtime.hpp"
#include "atoll/serialization.hpp"
#include "atoll/task.hpp"
