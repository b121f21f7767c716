#include "python-bindings/src/gil.hpp"

namespace atoll_py {

namespace {

// This thread's own Python thread state, kept between tasks. Its gilstate counter stays at one
// while the thread runs so that PyGILState_Release never deletes it.
class ThreadStateKeeper {
 public:
  void ensure() {
    if (made_ || PyGILState_GetThisThreadState() != nullptr) return;
    PyGILState_Ensure();  // creates the thread state and takes the GIL
    state_ = PyEval_SaveThread();
    made_ = true;
  }
  ~ThreadStateKeeper() {
    if (!made_ || !python_alive()) return;  // at exit the interpreter frees thread states itself
    PyEval_RestoreThread(state_);
    PyGILState_Release(PyGILState_UNLOCKED);  // the counter reaches zero: deleted, GIL released
  }

 private:
  bool made_ = false;
  PyThreadState* state_ = nullptr;
};

thread_local ThreadStateKeeper keeper;

}  // namespace

bool python_alive() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsInitialized() && !Py_IsFinalizing();
#else
  return Py_IsInitialized() && !_Py_IsFinalizing();
#endif
}

WorkerGil::WorkerGil() {
  if (PyGILState_Check()) return;
  keeper.ensure();
  state_ = PyGILState_Ensure();
  held_ = true;
}

WorkerGil::~WorkerGil() {
  if (held_) PyGILState_Release(state_);
}

}  // namespace atoll_py
