// Taking the GIL on the runtime's own threads (workers, actor threads), which Python did not
// create.
//
// PyGILState_Ensure/Release on such a thread would create and destroy a Python thread state for
// every task; instead each runtime thread keeps one for its whole life (made on first use, removed
// when the thread exits while the interpreter still runs). A thread that already holds the GIL (a
// Python thread running a task inline) is left as it is.
#pragma once

#include <Python.h>

namespace atoll_py {

class WorkerGil {
 public:
  WorkerGil();
  ~WorkerGil();
  WorkerGil(const WorkerGil&) = delete;
  WorkerGil& operator=(const WorkerGil&) = delete;

 private:
  bool held_ = false;  // this scope took the GIL and must give it back
  PyGILState_STATE state_{};
};

// False once the interpreter is gone or finalizing: no Python may run then, and objects are leaked
// rather than released.
bool python_alive() noexcept;

}  // namespace atoll_py
