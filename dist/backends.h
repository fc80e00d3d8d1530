// The factories of the communicators that are built in optionally (internal to dist/).
#pragma once
#include <memory>

#include "dist/communicator.h"

namespace mmgrad::dist {

// Collectives take defined, contiguous tensors: otherwise an error naming `op`.
void check_contiguous(const Tensor& t, const char* op);
// The checked shapes of the gathered [ranks * n, ...] and scattered [n, ...] results of a
// contiguous t (errors name the collective).
Shape gathered_shape(const Tensor& t, int ranks);
Shape scattered_shape(const Tensor& t, int ranks);

// MPI_COMM_WORLD (MPI_Init runs now); null when built without MPI.
std::unique_ptr<Communicator> make_mpi_communicator();

// NCCL over the ranks of `host` (which carries the unique id and the host-side
// collectives); null when built without NCCL.
std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host);

}  // namespace mmgrad::dist
