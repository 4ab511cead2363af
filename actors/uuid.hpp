#pragma once

#include "engine/types.hpp"

namespace annal::actors {

// A random (version 4, RFC 4122 variant) UUID. Thread-safe: each thread draws
// from its own generator, seeded once from std::random_device.
event_id random_uuid_v4();

// Whether every byte of `id` is zero (the nil UUID: "generate one for me").
bool is_nil(const event_id& id);

}  // namespace annal::actors
