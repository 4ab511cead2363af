#pragma once

#include <string>
#include <string_view>

namespace annal::testing {

// A fresh, empty directory under /tmp (mkdtemp "/tmp/annal-test-XXXXXX") that
// is removed with everything in it when the object is destroyed.
// Owned by one test; not copyable or movable, so the directory lives exactly
// as long as the object. Not thread-safe to construct or destroy; path() and
// file() may be called from any thread.
class temp_dir {
 public:
  // Throws std::system_error if the directory cannot be created: a test
  // cannot run without it.
  temp_dir();
  // Removes the tree; a failure is logged, not thrown.
  ~temp_dir();

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  // Absolute path of the directory, without a trailing '/'.
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string file(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace annal::testing
