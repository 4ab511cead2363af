#include "net/framing.hpp"

#include <cstring>
#include <memory>

#include <capnp/serialize.h>

namespace annal::net {
namespace {

std::uint32_t load_le32(const std::byte* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

void store_le32(std::byte* p, std::uint32_t v) {
  p[0] = static_cast<std::byte>(v);
  p[1] = static_cast<std::byte>(v >> 8);
  p[2] = static_cast<std::byte>(v >> 16);
  p[3] = static_cast<std::byte>(v >> 24);
}

}  // namespace

frame_status next_frame(std::span<const std::byte> buffer, std::size_t max_frame_bytes,
                        frame_view& out) {
  if (buffer.size() < k_frame_header_bytes) return frame_status::need_more;
  const std::uint32_t length = load_le32(buffer.data());
  if (length > max_frame_bytes) return frame_status::too_large;
  if (length == 0 || length % sizeof(capnp::word) != 0) return frame_status::malformed;
  // The segment table's first word: segment count - 1, first segment size.
  if (buffer.size() >= k_frame_header_bytes + 8) {
    const std::uint32_t segments = load_le32(buffer.data() + 4) + 1;
    const std::size_t table_words = (segments / 2) + 1;  // (4 + 4 * segments) rounded up to 8
    if (segments > 512 || table_words * 8 > length) return frame_status::malformed;
  }
  if (buffer.size() < k_frame_header_bytes + length) return frame_status::need_more;
  out.payload = buffer.subspan(k_frame_header_bytes, length);
  out.consumed = k_frame_header_bytes + length;
  // The segment table must describe exactly the payload.
  const std::uint32_t segments = load_le32(out.payload.data()) + 1;
  std::uint64_t words = (segments / 2) + 1;
  for (std::uint32_t i = 0; i < segments; ++i) {
    words += load_le32(out.payload.data() + 4 + 4 * static_cast<std::size_t>(i));
  }
  if (words * 8 != length) return frame_status::malformed;
  return frame_status::ok;
}

void append_frame(std::vector<std::byte>& out, capnp::MessageBuilder& message) {
  auto segments = message.getSegmentsForOutput();
  const std::size_t table_words = (segments.size() / 2) + 1;
  std::size_t words = table_words;
  for (auto& segment : segments) words += segment.size();
  const std::size_t start = out.size();
  out.resize(start + k_frame_header_bytes + words * 8);
  std::byte* p = out.data() + start;
  store_le32(p, static_cast<std::uint32_t>(words * 8));
  p += k_frame_header_bytes;
  std::memset(p, 0, table_words * 8);
  store_le32(p, static_cast<std::uint32_t>(segments.size() - 1));
  for (std::size_t i = 0; i < segments.size(); ++i) {
    store_le32(p + 4 + 4 * i, static_cast<std::uint32_t>(segments[i].size()));
  }
  p += table_words * 8;
  for (auto& segment : segments) {
    std::memcpy(p, segment.begin(), segment.size() * 8);
    p += segment.size() * 8;
  }
}

std::vector<std::byte> make_frame(capnp::MessageBuilder& message) {
  std::vector<std::byte> out;
  append_frame(out, message);
  return out;
}

capnp::ReaderOptions reader_options() {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = k_traversal_limit_words;
  options.nestingLimit = k_nesting_limit;
  return options;
}

std::span<std::byte> receive_buffer::prepare(std::size_t min_free) {
  if (read_pos_ == write_pos_) {
    read_pos_ = write_pos_ = 0;
  } else if (bytes_.size() - write_pos_ < min_free && read_pos_ > 0) {
    std::memmove(bytes_.data(), bytes_.data() + read_pos_, write_pos_ - read_pos_);
    write_pos_ -= read_pos_;
    read_pos_ = 0;
  }
  if (bytes_.size() - write_pos_ < min_free) bytes_.resize(write_pos_ + min_free);
  return {bytes_.data() + write_pos_, bytes_.size() - write_pos_};
}

void receive_buffer::consume(std::size_t n) {
  read_pos_ += n;
  if (read_pos_ == write_pos_) read_pos_ = write_pos_ = 0;
}

kj::ArrayPtr<const capnp::word> aligned_scratch::copy(std::span<const std::byte> payload) {
  const std::size_t words = payload.size() / sizeof(capnp::word);
  if (words_.size() < words) words_ = kj::heapArray<capnp::word>(std::max<std::size_t>(words, 512));
  std::memcpy(words_.begin(), payload.data(), words * sizeof(capnp::word));
  return words_.slice(0, words).asConst();
}

std::shared_ptr<kj::Array<capnp::word>> copy_to_words(std::span<const std::byte> payload) {
  const std::size_t words = payload.size() / sizeof(capnp::word);
  auto array = std::make_shared<kj::Array<capnp::word>>(kj::heapArray<capnp::word>(words));
  std::memcpy(array->begin(), payload.data(), words * sizeof(capnp::word));
  return array;
}

word_buffer_pool::copy_of::~copy_of() {
  if (auto pool = pool_.lock()) pool->give_back(std::move(buffer_));
}

std::shared_ptr<const word_buffer_pool::copy_of> word_buffer_pool::copy(
    std::span<const std::byte> payload) {
  const std::size_t words = payload.size() / sizeof(capnp::word);
  kj::Array<capnp::word> buffer;
  {
    std::lock_guard lock(mu_);
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if (it->size() >= words) {
        buffer = std::move(*it);
        idle_.erase(it);
        break;
      }
    }
  }
  if (buffer == nullptr) {
    // Rounded up to a power of two: frames of slightly different sizes
    // reuse the same buffers.
    std::size_t size = 512;
    while (size < words) size *= 2;
    buffer = kj::heapArray<capnp::word>(size);
  }
  std::memcpy(buffer.begin(), payload.data(), words * sizeof(capnp::word));
  return std::make_shared<const copy_of>(std::move(buffer), words, weak_from_this());
}

void word_buffer_pool::give_back(kj::Array<capnp::word> buffer) {
  std::lock_guard lock(mu_);
  if (idle_.size() < max_buffers_) idle_.push_back(std::move(buffer));
}

}  // namespace annal::net
