// Small helpers around tpm2-tss types: the TPM handle type the layers above core name, and an
// owner for ESYS-allocated output parameters.
#pragma once

#include <utility>

#include <tss2/tss2_esys.h>

namespace idevid {

// A TPM handle: a persistent object 0x81xxxxxx, an NV index 0x01xxxxxx, a transient 0x80xxxxxx
// (TPM 2.0 Part 2, 7.2), as the TPM names it (not an ESYS_TR).
using TpmHandle = TPM2_HANDLE;

// Owns a structure that ESYS allocated for an output parameter; freed with Esys_Free.
template <typename T>
class EsysBuffer {
 public:
  EsysBuffer() = default;
  EsysBuffer(EsysBuffer&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)) {}
  EsysBuffer& operator=(EsysBuffer&& other) noexcept {
    std::swap(ptr_, other.ptr_);
    return *this;
  }
  EsysBuffer(const EsysBuffer&) = delete;
  EsysBuffer& operator=(const EsysBuffer&) = delete;
  ~EsysBuffer() { Esys_Free(ptr_); }

  T* get() const { return ptr_; }
  T* operator->() const { return ptr_; }
  T& operator*() const { return *ptr_; }
  explicit operator bool() const { return ptr_ != nullptr; }
  // The address to pass as an ESYS output parameter; frees what was held before, so a retried
  // command does not leak the previous answer.
  T** out() {
    Esys_Free(ptr_);
    ptr_ = nullptr;
    return &ptr_;
  }

 private:
  T* ptr_ = nullptr;
};

}  // namespace idevid
