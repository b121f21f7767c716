// atoll's C++ exceptions as the Python exceptions of atoll.exceptions (built there, by
// `_from_native`, so that the classes are ordinary Python classes).
#pragma once

namespace atoll_py {

void register_error_translator();

}  // namespace atoll_py
