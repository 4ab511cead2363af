#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include <capnp/message.h>
#include <kj/array.h>

// Framing of the binary protocol (docs/protocol.md): every frame is a 4-byte
// little-endian length N followed by N bytes of one Cap'n Proto message in
// standard stream framing (segment table, then segments). N is a multiple of
// 8 and at least 8. Plain functions and buffers, no sockets.
namespace annal::net {

inline constexpr std::size_t k_frame_header_bytes = 4;
inline constexpr std::uint32_t k_default_max_frame_bytes = 16u << 20;
// Decoding limits for every received message (capnp::ReaderOptions).
inline constexpr std::uint64_t k_traversal_limit_words = 8u << 20;  // 64 MiB
// Deep enough for the deepest valid query (engine/query/query_codec.hpp:
// k_query_nesting_limit) inside a Request.
inline constexpr int k_nesting_limit = 160;

enum class frame_status {
  ok,         // `payload` and `consumed` are set
  need_more,  // the frame is not complete yet
  too_large,  // the length prefix is over the limit (nothing was allocated)
  malformed,  // the length is not a multiple of 8, is 0, or disagrees with the segment table
};

struct frame_view {
  std::span<const std::byte> payload;  // the Cap'n Proto message bytes
  std::size_t consumed = 0;            // header + payload
};

// Parses the frame at the start of `buffer`. Thread-safe (pure).
frame_status next_frame(std::span<const std::byte> buffer, std::size_t max_frame_bytes,
                        frame_view& out);

// Appends `message` as one frame to `out`. Never allocates beyond growing `out`.
void append_frame(std::vector<std::byte>& out, capnp::MessageBuilder& message);
// The frame as a fresh buffer (tests, one-off messages).
std::vector<std::byte> make_frame(capnp::MessageBuilder& message);

capnp::ReaderOptions reader_options();

// A growable receive buffer: bytes [read_pos, write_pos) are received and not
// yet consumed. Not thread-safe: owned by one connection.
class receive_buffer {
 public:
  explicit receive_buffer(std::size_t initial = 64u << 10) : bytes_(initial) {}

  // Free space to receive into, at least `min_free` bytes (moves unconsumed
  // bytes to the front first).
  std::span<std::byte> prepare(std::size_t min_free);
  void commit(std::size_t n) { write_pos_ += n; }
  std::span<const std::byte> data() const {
    return {bytes_.data() + read_pos_, write_pos_ - read_pos_};
  }
  void consume(std::size_t n);
  std::size_t size() const { return write_pos_ - read_pos_; }

 private:
  std::vector<std::byte> bytes_;
  std::size_t read_pos_ = 0;
  std::size_t write_pos_ = 0;
};

// Copies a frame payload into word-aligned memory (a frame payload in a
// receive buffer sits at any 4-byte offset) and reuses that memory. Not
// thread-safe: owned by one connection.
class aligned_scratch {
 public:
  // The payload as words. Valid until the next call.
  kj::ArrayPtr<const capnp::word> copy(std::span<const std::byte> payload);

 private:
  kj::Array<capnp::word> words_;
};

// A fresh word-aligned copy of `payload`, for messages whose reader must
// outlive the receive buffer (read replies keep it in read_page::buffers).
std::shared_ptr<kj::Array<capnp::word>> copy_to_words(std::span<const std::byte> payload);

// Word-aligned copies of frames whose decoded values keep them (a
// subscription's batches, about a megabyte each), in buffers that are reused
// instead of allocated per frame: malloc hands blocks that large back to the
// kernel when they are freed, so a fresh one may cost a page fault per 4 KiB
// on every copy (a 10 M-event catch-up: 3 k to 30 k minor faults with fresh
// buffers, the slower runs having the most; about 3 k with the pool).
//
// Thread-safe: a buffer comes back from whichever thread drops the last
// reference to its copy; the pool may be destroyed first (the buffer is then
// freed). Keeps at most `max_buffers` idle buffers.
class word_buffer_pool : public std::enable_shared_from_this<word_buffer_pool> {
 public:
  // One copy; its words stay valid as long as a reference to it lives.
  class copy_of {
   public:
    copy_of(kj::Array<capnp::word> buffer, std::size_t words, std::weak_ptr<word_buffer_pool> pool)
        : buffer_(std::move(buffer)), words_(words), pool_(std::move(pool)) {}
    ~copy_of();
    copy_of(const copy_of&) = delete;
    copy_of& operator=(const copy_of&) = delete;

    kj::ArrayPtr<const capnp::word> words() const { return buffer_.slice(0, words_).asConst(); }

   private:
    kj::Array<capnp::word> buffer_;
    std::size_t words_;
    std::weak_ptr<word_buffer_pool> pool_;
  };

  explicit word_buffer_pool(std::size_t max_buffers = 4) : max_buffers_(max_buffers) {}

  // Requires: the pool is owned by a shared_ptr.
  std::shared_ptr<const copy_of> copy(std::span<const std::byte> payload);

 private:
  void give_back(kj::Array<capnp::word> buffer);

  const std::size_t max_buffers_;
  std::mutex mu_;
  std::vector<kj::Array<capnp::word>> idle_;  // guarded by mu_
};

}  // namespace annal::net
