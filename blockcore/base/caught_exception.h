// What an adapter at a C boundary (libext2fs, FUSE and nbdkit callbacks) reports for the exception it caught.
#pragma once

#include <cerrno>
#include <exception>
#include <new>

namespace vdkit {

struct CaughtException {
  int code;             // ENOMEM for std::bad_alloc, EIO for anything else (a bug)
  const char* message;  // valid until the catch block that called describe_caught_exception() ends
};

// Call only inside a catch block: names the exception in flight without copying it.
inline CaughtException describe_caught_exception() noexcept {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return {ENOMEM, "out of memory"};
  } catch (const std::exception& e) {
    return {EIO, e.what()};
  } catch (...) {
    return {EIO, "an exception that is not a std::exception"};
  }
}

}  // namespace vdkit
