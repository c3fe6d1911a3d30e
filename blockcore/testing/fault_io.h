// FaultInjectingEngine: an IoEngine that fails chosen transfers (read errors, short reads, ENOSPC/EIO on write,
// torn writes) so tests can prove that convert, NBD, FUSE and fixups fail cleanly.
#pragma once

#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "blockcore/io/io_engine.h"

namespace vdkit {

class FaultInjectingEngine final : public IoEngine {
 public:
  enum class Kind {
    kReadError,   // the read fails with `error`
    kShortRead,   // the read stops after `keep` bytes, as at end of file
    kWriteError,  // the write fails with `error` (EIO, ENOSPC, ...) and writes nothing
    kTornWrite,   // the first `keep` bytes are written, then the write fails with `error`
  };
  struct Rule {
    Kind kind = Kind::kReadError;
    int error = EIO;
    int fd = -1;                   // -1: any file
    uint64_t offset = 0;           // a transfer touching [offset, offset+length) triggers the rule
    uint64_t length = std::numeric_limits<uint64_t>::max();
    size_t keep = 0;               // bytes that still get through (short read, torn write)
    int times = -1;                // how many times it fires; -1 = always
    std::string path_contains;     // only files whose path contains this (empty: any)
    uint64_t skip = 0;             // matching transfers that pass untouched before the rule starts firing
  };

  // Rules from text, ';'-separated, each KIND:PATH:OFFSET:LENGTH[:ERRNO[:TIMES[:KEEP[:SKIP]]]] with KIND one
  // of read-error, short-read, write-error, torn-write; PATH a substring of the file's path (may be empty);
  // ERRNO a number or EIO/ENOSPC/EROFS/ENOMEM; SKIP lets that many matching transfers through first, so a test
  // can fail the Nth write of a run. Example: "read-error:disk.qcow2:1048576:4096".
  static Result<std::vector<Rule>> ParseRules(const std::string& spec);

  explicit FaultInjectingEngine(IoEngine& inner) : inner_(inner) {}
  const char* name() const override { return "fault-injecting"; }
  void add_rule(const Rule& r);
  void clear();
  // How many transfers a rule has failed so far.
  uint64_t fired() const;

  Status submit(std::span<IoRequest> reqs) override;
  Status fsync(int fd) override { return inner_.fsync(fd); }

 private:
  // The rule that applies to r, consuming one of its `times`; null if none.
  bool take_rule(const IoRequest& r, Rule& out);
  IoEngine& inner_;
  mutable std::mutex mu_;
  std::vector<Rule> rules_;
  uint64_t fired_ = 0;
};

}  // namespace vdkit
