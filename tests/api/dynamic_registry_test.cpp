// Dynamic entries (what a language binding registers): functions and actor classes whose invokers
// decode their own arguments, registered before init or merged into a running runtime, and
// ForeignException carried to the caller as a TaskError.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "test_module.hpp"

namespace {

using api_test::kWait;
using api_test::thrown_category;
using atl::ErrorCategory;
using atl::detail::ArgSpec;
using atl::detail::CallFrame;
using atl::detail::Payload;

struct BindingTag {};  // the C++ type a binding's actor classes share

// Sums its arguments: int values, resolved ObjectRefs, and passed ObjectRefs (read in the task).
Payload sum_args(CallFrame& f) {
  int total = 0;
  for (std::size_t i = 0; i < f.args.size(); ++i) {
    if (f.args[i].kind == ArgSpec::Kind::pass_ref)
      total += atl::ObjectRef<int>(f.args[i].ref).get(kWait);
    else
      total += atl::detail::deserialize<int>(*f.values[i]);
  }
  return atl::detail::serialize(total);
}

ArgSpec value(int v) {
  ArgSpec a;
  a.value = atl::detail::serialize(v);
  return a;
}

ArgSpec ref(const atl::ObjectRef<int>& r, ArgSpec::Kind kind) {
  ArgSpec a;
  a.kind = kind;
  a.ref = r.token();
  return a;
}

void binding_module(atl::Registry& reg) {
  reg.dynamic_function("sum", sum_args);
}

atl::DynamicActorRegistration counter_class(atl::Registry& reg) {
  return reg
      .dynamic_actor("DynCounter", typeid(BindingTag),
                     [](CallFrame& f) {
                       auto n = std::make_shared<int>(0);
                       for (std::size_t i = 0; i < f.args.size(); ++i)
                         *n += atl::detail::deserialize<int>(*f.values[i]);
                       return std::shared_ptr<void>(n);
                     })
      .method("incr",
              [](void* self, CallFrame& f) {
                int& n = *static_cast<int*>(self);
                n += atl::detail::deserialize<int>(*f.values[0]);
                return atl::detail::serialize(n);
              })
      .method("fail", [](void*, CallFrame&) -> Payload {
        throw atl::ForeignException("ValueError", "bad value", "Traceback:\n  line 1", "blob");
      });
}

atl::ObjectRef<int> call(const atl::Runtime& rt, std::string_view fn, std::vector<ArgSpec> args) {
  const auto& entry = rt.core()->function_by_name(fn);
  return atl::ObjectRef<int>(rt.core()->submit_task(entry, std::move(args), nullptr));
}

TEST(DynamicRegistryTest, function_takes_any_number_and_kind_of_arguments) {
  auto rt = atl::init({.modules = {binding_module}, .nodes = {{.num_cpus = 2}}});
  EXPECT_EQ(call(rt, "sum", {}).get(kWait), 0);
  auto three = rt.put(3);
  auto four = rt.put(4);
  EXPECT_EQ(
      call(rt, "sum",
           {value(1), ref(three, ArgSpec::Kind::resolve_ref), ref(four, ArgSpec::Kind::pass_ref)})
          .get(kWait),
      8);
}

TEST(DynamicRegistryTest, extend_adds_entries_to_a_running_runtime) {
  auto rt = atl::init({.nodes = {{.num_cpus = 2}}});
  EXPECT_EQ(thrown_category([&] { rt.core()->function_by_name("sum"); }),
            ErrorCategory::invalid_argument);
  rt.extend(binding_module);
  EXPECT_EQ(call(rt, "sum", {value(2), value(5)}).get(kWait), 7);
}

TEST(DynamicRegistryTest, python_functions_by_import_path_need_a_cluster) {
  auto rt = atl::init({.nodes = {{.num_cpus = 1}}});
  try {
    rt.python_task<int>("mypkg.ops", "triple");
    FAIL() << "expected an error";
  } catch (const atl::Error& e) {
    EXPECT_EQ(e.category(), atl::ErrorCategory::unimplemented);
    EXPECT_NE(std::string(e.what()).find("cluster"), std::string::npos) << e.what();
  }
}

TEST(DynamicRegistryTest, extend_refuses_a_taken_name_and_adds_nothing) {
  auto rt = atl::init({.modules = {binding_module}, .nodes = {{.num_cpus = 2}}});
  auto both = [](atl::Registry& reg) {
    reg.dynamic_function("fresh", sum_args);
    reg.dynamic_function("sum", sum_args);
  };
  EXPECT_EQ(thrown_category([&] { rt.extend(both); }), ErrorCategory::invalid_argument);
  EXPECT_EQ(thrown_category([&] { rt.core()->function_by_name("fresh"); }),
            ErrorCategory::invalid_argument);
  EXPECT_EQ(thrown_category([&] { rt.extend(api_test_module); }), std::nullopt);
  EXPECT_EQ(thrown_category([&] { rt.extend(api_test_module); }),
            ErrorCategory::invalid_argument);  // its C++ functions are there now
  EXPECT_EQ(rt.task(api_test::add).remote(1, 2).get(kWait), 3);
}

TEST(DynamicRegistryTest, lookups_run_while_entries_are_merged) {
  auto rt = atl::init({.modules = {binding_module}, .nodes = {{.num_cpus = 2}}});
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) ASSERT_EQ(call(rt, "sum", {value(1)}).get(kWait), 1);
  });
  for (int i = 0; i < 200; ++i)
    rt.extend([i](atl::Registry& reg) { reg.dynamic_function("f" + std::to_string(i), sum_args); });
  stop = true;
  reader.join();
  EXPECT_EQ(call(rt, "f199", {value(9)}).get(kWait), 9);
}

const atl::detail::ActorClassEntry* extend_with_counter(const atl::Runtime& rt) {
  const atl::detail::ActorClassEntry* entry = nullptr;
  rt.extend([&](atl::Registry& reg) { entry = &counter_class(reg).entry(); });
  return entry;
}

atl::ObjectRef<int> call_method(const std::shared_ptr<atl::detail::ActorToken>& actor,
                                std::string_view method, std::vector<ArgSpec> args) {
  const auto* m = actor->actor_class().find_method(method);
  EXPECT_NE(m, nullptr);
  return atl::ObjectRef<int>(actor->core().submit_actor_call(*actor, *m, std::move(args)));
}

TEST(DynamicRegistryTest, dynamic_actor_takes_any_constructor_arguments) {
  auto rt = atl::init({.nodes = {{.num_cpus = 2}}});
  const auto* cls = extend_with_counter(rt);
  ASSERT_NE(cls, nullptr);
  auto empty = rt.core()->create_actor(*cls, {}, {});
  EXPECT_EQ(call_method(empty, "incr", {value(2)}).get(kWait), 2);
  auto ten = rt.put(10);
  auto named = rt.core()->create_actor(*cls, {value(1), ref(ten, ArgSpec::Kind::resolve_ref)},
                                       {.name = "counter"});
  EXPECT_EQ(call_method(named, "incr", {value(5)}).get(kWait), 16);
  // Found by name with the binding's tag; a C++ type that is not the tag is refused.
  auto found = rt.core()->find_actor("counter", typeid(BindingTag));
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(call_method(found, "incr", {value(1)}).get(kWait), 17);
  EXPECT_EQ(thrown_category([&] { rt.core()->find_actor("counter", typeid(api_test::Counter)); }),
            ErrorCategory::invalid_argument);
}

TEST(DynamicRegistryTest, dynamic_method_names_must_be_unique) {
  atl::Registry reg;
  auto cls = counter_class(reg);
  EXPECT_EQ(
      thrown_category([&] { cls.method("incr", [](void*, CallFrame&) { return Payload{}; }); }),
      ErrorCategory::invalid_argument);
  EXPECT_EQ(thrown_category([&] { counter_class(reg); }), ErrorCategory::invalid_argument);
}

TEST(DynamicRegistryTest, foreign_exception_reaches_the_caller_as_task_error) {
  auto rt = atl::init({.nodes = {{.num_cpus = 2}}});
  auto actor = rt.core()->create_actor(*extend_with_counter(rt), {}, {});
  try {
    call_method(actor, "fail", {}).get(kWait);
    FAIL() << "expected a TaskError";
  } catch (const atl::TaskError& e) {
    EXPECT_EQ(e.remote_type(), "ValueError");
    EXPECT_EQ(e.remote_message(), "bad value");
    EXPECT_EQ(e.traceback(), "Traceback:\n  line 1");
    EXPECT_EQ(e.details(), "blob");
    EXPECT_EQ(e.task_name(), "DynCounter.fail");
  }
  // The actor survives a method's exception.
  EXPECT_EQ(call_method(actor, "incr", {value(3)}).get(kWait), 3);
}

TEST(DynamicRegistryTest, extend_after_shutdown_raises) {
  auto rt = atl::init({.nodes = {{.num_cpus = 1}}});
  rt.shutdown();
  EXPECT_THROW(rt.extend(binding_module), atl::RuntimeShutdownError);
}

}  // namespace
