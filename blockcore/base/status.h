// Status and Result<T>: the one error convention of vdkit (an errno value plus a message naming the problem).
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace vdkit {

// A cheap status: code 0 is success; otherwise an errno value (EINVAL for bad
// input, EIO for I/O failures, ENOTSUP for unsupported features, ...) and a
// message meant for a human that names the file, field and offset involved.
class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(int code, std::string msg) { return Status(code == 0 ? EIO : code, std::move(msg)); }
  // Shorthands for the common cases.
  static Status Invalid(std::string msg) { return Error(EINVAL, std::move(msg)); }
  static Status Corrupt(std::string msg) { return Error(EINVAL, std::move(msg)); }
  static Status Unsupported(std::string msg) { return Error(ENOTSUP, std::move(msg)); }
  static Status IoError(std::string msg) { return Error(EIO, std::move(msg)); }
  // From errno after a failed system call: "what: strerror(err)".
  static Status FromErrno(int err, const std::string& what);

  bool ok() const { return code_ == 0; }
  explicit operator bool() const { return ok(); }
  int code() const { return code_; }
  const std::string& message() const { return msg_; }
  std::string ToString() const { return ok() ? std::string("ok") : msg_; }

  // Adds context in front of the message: "opening base.vmdk: <old message>".
  Status Context(const std::string& ctx) const {
    if (ok()) return *this;
    return Status(code_, ctx + ": " + msg_);
  }

 private:
  Status(int code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  int code_ = 0;
  std::string msg_;
};

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {    // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status::Error(EIO, "internal error: Result built from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace vdkit

#define VDKIT_CONCAT_INNER(a, b) a##b
#define VDKIT_CONCAT(a, b) VDKIT_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when it is not ok.
#define VDKIT_RETURN_IF_ERROR(expr)            \
  do {                                         \
    ::vdkit::Status vdkit_st_ = (expr);        \
    if (!vdkit_st_.ok()) return vdkit_st_;     \
  } while (0)

// `VDKIT_ASSIGN_OR_RETURN(auto x, MakeX());` unwraps a Result or returns its Status.
#define VDKIT_ASSIGN_OR_RETURN(lhs, rexpr) \
  VDKIT_ASSIGN_OR_RETURN_IMPL(VDKIT_CONCAT(vdkit_res_, __LINE__), lhs, rexpr)
#define VDKIT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
